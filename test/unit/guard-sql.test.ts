// The guard's one statement, checked as a string plus parameters: names and limits only ever travel
// as parameters, the text is fixed per mode (a prepared statement), and a dry run cannot terminate.
import { describe, expect, it } from 'vitest';
import {
  GUARD_PREPARED,
  guardTick,
  guardUnblock,
  NO_TIMEOUTS,
  parseRoleKey,
  READ_ONE_BY_ONE,
  rollbackPrepared,
  type GuardRules,
} from '../../src/guard/sql.js';

const HOSTILE = `x'); SELECT pg_terminate_backend(pid) FROM pg_stat_activity;--`;
const rules = (over: Partial<GuardRules> = {}): GuardRules => ({
  deny: [],
  exclude: [],
  idle: NO_TIMEOUTS,
  idleInTransaction: NO_TIMEOUTS,
  ...over,
});

describe('guardTick', () => {
  const full = rules({
    deny: ['UPPER', HOSTILE, 'a"b'],
    exclude: ['break-glass'],
    idle: { databases: new Map([['app=prod', 300]]), roles: new Map([['etl', 0]]) },
    idleInTransaction: { databases: new Map([['app', 30]]), roles: new Map([['report', 1.5]]) },
  });

  it('passes every name and limit as a parameter, in a fixed order', () => {
    const q = guardTick(full, { dryRun: false, known: ['16384:login:mallory'], spared: [4242] });
    expect(q.values).toEqual([
      ['UPPER', HOSTILE, 'a"b'],
      ['break-glass'],
      ['app=prod'],
      [300],
      ['etl'],
      [0],
      ['app'],
      [30],
      ['report'],
      [1.5],
      ['16384:login:mallory'],
      [4242],
    ]);
    for (const name of ['UPPER', HOSTILE, 'a"b', 'break-glass', 'app=prod', 'etl', 'report']) expect(q.text).not.toContain(name);
    for (let i = 1; i <= 12; i++) expect(q.text).toContain(`$${i}::`);
    expect(q.text).not.toContain('$13');
    // the guard's lockout connection is spared as its own backend is
    expect(q.text).toContain('WHERE b.pid <> pg_backend_pid() AND b.pid <> ALL($12::int[])');
  });

  it('has one text per mode, whatever the rules: each connection prepares it once', () => {
    const a = guardTick(rules(), { dryRun: false });
    const b = guardTick(full, { dryRun: false });
    expect(a.text).toBe(b.text);
    expect(a.name).toBe(b.name);
    const d = guardTick(full, { dryRun: true });
    expect(d.name).not.toBe(a.name);
    expect(guardTick(rules(), { dryRun: true }).text).toBe(d.text);
    // empty rules still pass (empty) arrays, so the parameter types never change
    expect(a.values).toEqual([[], [], [], [], [], [], [], [], [], [], [], []]);
  });

  it('terminates in the same statement, only rows with a reason, only where the role may signal', () => {
    const { text } = guardTick(full, { dryRun: false });
    expect(text).toContain('CASE WHEN s.reason IS NOT NULL AND s.may_signal THEN pg_terminate_backend(s.pid) ELSE false END AS terminated');
    // a row without a reason only when its role is new to the guard
    expect(text).toMatch(/WHERE s\.role_key <> ALL\(\$11::text\[\]\) OR s\.reason IS NOT NULL\n/);
    // every role with a session is looked up (through the syscache) at every tick, suspect or not
    expect(text).toContain("':' || pg_get_userbyid(p.usesysid) AS role_key");
    expect(text.match(/pg_terminate_backend/g)).toHaveLength(1);
    // one statement, no separator
    expect(text).not.toContain(';');
  });

  it('also names each deny-listed role, session or not (pid null), while its key is new to the guard: its OID is known before any lock', () => {
    for (const dryRun of [false, true]) {
      const { text } = guardTick(full, { dryRun });
      const denied = text.slice(text.lastIndexOf('UNION ALL'));
      expect(denied).toContain('SELECT NULL::int AS pid, d.role, d.usesysid');
      // and the guard's own role, whose own session never comes back as a row
      expect(denied).toContain('FROM pg_roles r WHERE r.rolname::text = ANY($1::text[]) OR r.rolname = session_user');
      // looked up through the syscache too, so that pg_terminate_backend finds it cached under the lock
      expect(denied).toContain('pg_get_userbyid(r.oid)');
      expect(denied).toContain('WHERE d.role_key <> ALL($11::text[])');
      expect(denied).not.toContain('pg_terminate_backend');
    }
  });

  it('a dry run has no pg_terminate_backend in its text at all', () => {
    const { text } = guardTick(full, { dryRun: true });
    expect(text).not.toContain('pg_terminate_backend');
    expect(text).toContain('false AS terminated');
  });

  it('never its own backend, never role-less or non-client backends, never excluded roles', () => {
    const { text } = guardTick(full, { dryRun: false });
    expect(text).toContain('WHERE b.pid <> pg_backend_pid()');
    expect(text).toContain('WHERE u.usesysid <> 0');
    expect(text).toContain(`WHERE a.backend_type IN ('client backend', 'walsender') OR a.backend_type IS NULL`);
    expect(text).toContain('WHERE q.rolname IS NULL OR q.rolname <> ALL($2::text[])');
  });

  it('looks at every backend through the per-backend functions, and reads in full only the sessions a reason may hold for', () => {
    const { text } = guardTick(full, { dryRun: false });
    // no view (it joins pg_authid and pg_database for every backend) and no full pg_stat_get_activity() but past READ_ONE_BY_ONE
    expect(text).not.toContain('pg_stat_activity');
    expect(text).toContain('SELECT DISTINCT pg_stat_get_backend_userid(i) AS usesysid, pg_stat_get_backend_dbid(i) AS datid');
    expect(text.match(/pg_stat_get_activity\(/g)).toHaveLength(2);
    expect(text).toContain(
      `FROM c CROSS JOIN LATERAL pg_stat_get_activity(c.pid) a\n  WHERE (SELECT count(*) FROM c) <= ${READ_ONE_BY_ONE}`,
    );
    expect(text).toContain(`FROM pg_stat_get_activity(NULL::int) a\n  WHERE (SELECT count(*) FROM c) > ${READ_ONE_BY_ONE}`);
    // a pair (role, database) is suspect for each reason but idleness, or when its role is new to the guard
    expect(text).toContain(
      'q.roid IS NULL OR NOT q.rolcanlogin OR q.rolvaliduntil < now() OR q.rolname = ANY($1::text[])\n           OR q.role_key <> ALL($11::text[]) AS suspect',
    );
    // idleness: the shorter of the two limits, a role's entry winning over its database's, 0 none
    expect(text).toContain(
      'LEAST(NULLIF(COALESCE(($6::float8[])[array_position($5::text[], q.rolname)], ($4::float8[])[array_position($3::text[], q.datname)]), 0)',
    );
    // a session that began a statement within its limit cannot be idle past it: not read
    expect(text).toContain(
      "NOT COALESCE(pg_stat_get_backend_activity_start(b.i), pg_stat_get_backend_start(b.i))\n                          >= now() - k.idle_limit * interval '1 second'",
    );
    // the second walk over the backends runs only when some pair may have a reason
    expect(text).toContain(
      'FROM pg_stat_get_backend_idset() AS i WHERE EXISTS (SELECT * FROM k WHERE k.suspect OR k.idle_limit IS NOT NULL)',
    );
  });

  it('computes the reasons in SQL, in order, by OID and exact name', () => {
    const { text } = guardTick(full, { dryRun: false });
    const order = ["'role_dropped'", "'role_nologin'", "'role_expired'", "'denylisted'", "'idle_timeout'"].map((r) => text.indexOf(r));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(text).toContain('LEFT JOIN pg_roles r ON r.oid = p.usesysid');
    expect(text).toContain('WHEN c.roid IS NULL THEN');
    expect(text).toContain('WHEN NOT c.rolcanlogin THEN');
    expect(text).toContain('WHEN c.rolvaliduntil < now() THEN');
    expect(text).toContain('WHEN c.rolname = ANY($1::text[]) THEN');
    // the role's limit wins over its database's; 0 is no limit
    expect(text).toContain('COALESCE(lim.by_role, lim.by_database) > 0');
    // idle is state 'idle' only; idle in transaction has its own parameters
    expect(text).toContain(`WHEN a.state = 'idle' THEN ($6::float8[])[array_position($5::text[], c.rolname)]`);
    expect(text).toContain(
      `WHEN a.state IN ('idle in transaction', 'idle in transaction (aborted)') THEN ($10::float8[])[array_position($9::text[], c.rolname)]`,
    );
  });

  it('returns the forensic columns the audit line needs', () => {
    const { text } = guardTick(full, { dryRun: false });
    const head = text.slice(text.indexOf('\nSELECT s.pid'), text.indexOf('\nFROM ('));
    for (const c of ['pid', 'role', 'usesysid', 'database', 'client', 'application', 'query', 'reason', 'terminated'])
      expect(head).toMatch(new RegExp(`\\b${c}\\b`));
  });

  it('refuses limits that are not finite non-negative numbers', () => {
    expect(() => guardTick(rules({ idle: { databases: new Map([['x', -1]]), roles: new Map() } }), { dryRun: false })).toThrow(
      /invalid timeout/,
    );
    expect(() => guardTick(rules({ idle: { databases: new Map(), roles: new Map([['x', NaN]]) } }), { dryRun: false })).toThrow(
      /invalid timeout/,
    );
  });
});

describe('role keys', () => {
  it('OID, state, superuser and name; a name may hold colons; a dropped role has none', () => {
    expect(parseRoleKey('16384:login:mallory')).toEqual({
      key: '16384:login:mallory',
      oid: '16384',
      state: 'login',
      superuser: false,
      name: 'mallory',
    });
    expect(parseRoleKey('10:nologin+super:a:b')).toMatchObject({ oid: '10', state: 'nologin', superuser: true, name: 'a:b' });
    expect(parseRoleKey('99:dropped:unknown (OID=99)')).toMatchObject({ state: 'dropped', name: null });
  });
});

describe('guardUnblock', () => {
  it('reads only pg_lock_status() and pg_stat_get_activity(), never the views that join pg_authid', () => {
    const { text } = guardUnblock({ dryRun: false });
    expect(text).toContain('FROM pg_lock_status() l');
    expect(text).toContain('JOIN pg_stat_get_activity(NULL::int) a');
    for (const view of ['pg_locks', 'pg_stat_activity', 'pg_roles', 'pg_authid', 'pg_database', 'regclass'])
      expect(text).not.toContain(view);
  });

  it('holders of granted locks on shared catalogs or on any catalog relation, never the guard itself', () => {
    const { text } = guardUnblock({ dryRun: false });
    expect(text).toContain(
      "l.granted AND l.pid <> pg_backend_pid() AND (l.database = 0 OR (l.locktype = 'relation' AND l.relation::int8 < 16384))",
    );
  });

  it('terminates only the role OIDs passed as $1; a dry run has no pg_terminate_backend but the same parameter', () => {
    const live = guardUnblock({ dryRun: false });
    expect(live.text).toContain(
      'CASE WHEN a.usesysid::int8 = ANY($1::int8[]) THEN pg_terminate_backend(a.pid) ELSE false END AS terminated',
    );
    const dry = guardUnblock({ dryRun: true });
    expect(dry.name).not.toBe(live.name);
    expect(dry.text).not.toContain('pg_terminate_backend');
    expect(dry.text).toContain('$1::int8[]');
  });
});

describe('prepared transactions holding catalog locks', () => {
  it('reads only pg_prepared_xact(), pg_lock_status() and pg_stat_get_activity(), never views or catalogs that may be locked', () => {
    const { text } = GUARD_PREPARED;
    expect(text).toContain('FROM pg_prepared_xact() p');
    expect(text).toContain('p.dbid = (SELECT me.datid FROM pg_stat_get_activity(pg_backend_pid()) me) AS here');
    for (const view of ['pg_prepared_xacts', 'pg_locks', 'pg_stat_activity', 'pg_roles', 'pg_authid', 'pg_database', 'regclass'])
      expect(text).not.toContain(view);
    expect(text).not.toContain('$1');
  });

  it("finds a transaction's locks through its own transactionid lock (no pid), by virtualtransaction", () => {
    const { text } = GUARD_PREPARED;
    expect(text).toContain("x.locktype = 'transactionid' AND x.transactionid = p.transaction AND x.pid IS NULL");
    expect(text).toContain("l.granted AND l.pid IS NULL AND (l.database = 0 OR (l.locktype = 'relation' AND l.relation::int8 < 16384))");
    expect(text).toContain('h.virtualtransaction = x.virtualtransaction');
  });

  it('ROLLBACK PREPARED takes the gid as a quoted literal', () => {
    expect(rollbackPrepared('lockout')).toBe("ROLLBACK PREPARED 'lockout'");
    expect(rollbackPrepared("x'; DROP ROLE postgres; --")).toBe("ROLLBACK PREPARED 'x''; DROP ROLE postgres; --'");
    expect(rollbackPrepared('a\\b')).toBe("ROLLBACK PREPARED E'a\\\\b'");
    expect(() => rollbackPrepared('a\0b')).toThrow(/NUL/);
  });
});
