// The guard's one statement, checked as a string plus parameters: names and limits only ever travel
// as parameters, the text is fixed per mode (a prepared statement), and a dry run cannot terminate.
import { describe, expect, it } from 'vitest';
import { guardTick, NO_TIMEOUTS, type GuardRules } from '../../src/guard/sql.js';

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
    const q = guardTick(full, { dryRun: false });
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
    ]);
    for (const name of ['UPPER', HOSTILE, 'a"b', 'break-glass', 'app=prod', 'etl', 'report']) expect(q.text).not.toContain(name);
    for (let i = 1; i <= 10; i++) expect(q.text).toContain(`$${i}::`);
    expect(q.text).not.toContain('$11');
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
    expect(a.values).toEqual([[], [], [], [], [], [], [], [], [], []]);
  });

  it('terminates in the same statement, only rows with a reason, only where the role may signal', () => {
    const { text } = guardTick(full, { dryRun: false });
    expect(text).toContain('CASE WHEN s.may_signal THEN pg_terminate_backend(s.pid) ELSE false END AS terminated');
    expect(text).toMatch(/WHERE s\.reason IS NOT NULL/);
    expect(text.match(/pg_terminate_backend/g)).toHaveLength(1);
    // one statement, no separator
    expect(text).not.toContain(';');
  });

  it('a dry run has no pg_terminate_backend in its text at all', () => {
    const { text } = guardTick(full, { dryRun: true });
    expect(text).not.toContain('pg_terminate_backend');
    expect(text).toContain('false AS terminated');
  });

  it('never its own backend, never role-less or non-client backends, never excluded roles', () => {
    const { text } = guardTick(full, { dryRun: false });
    expect(text).toContain('a.pid <> pg_backend_pid()');
    expect(text).toContain('a.usesysid IS NOT NULL');
    expect(text).toContain(`a.backend_type IN ('client backend', 'walsender')`);
    expect(text).toContain('r.rolname::text <> ALL($2::text[])');
  });

  it('computes the reasons in SQL, in order, by OID and exact name', () => {
    const { text } = guardTick(full, { dryRun: false });
    const order = ["'role_dropped'", "'role_nologin'", "'role_expired'", "'denylisted'", "'idle_timeout'"].map((r) => text.indexOf(r));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(text).toContain('LEFT JOIN pg_roles r ON r.oid = a.usesysid');
    expect(text).toContain('WHEN r.oid IS NULL THEN');
    expect(text).toContain('WHEN NOT r.rolcanlogin THEN');
    expect(text).toContain('WHEN r.rolvaliduntil < now() THEN');
    expect(text).toContain('WHEN r.rolname::text = ANY($1::text[]) THEN');
    // the role's limit wins over its database's; 0 is no limit
    expect(text).toContain('COALESCE(lim.by_role, lim.by_database) > 0');
    // idle is state 'idle' only; idle in transaction has its own parameters
    expect(text).toContain(`WHEN a.state = 'idle' THEN (SELECT t.s FROM unnest($5::text[], $6::float8[])`);
    expect(text).toContain(
      `WHEN a.state IN ('idle in transaction', 'idle in transaction (aborted)') THEN (SELECT t.s FROM unnest($9::text[], $10::float8[])`,
    );
  });

  it('returns the forensic columns the audit line needs', () => {
    const { text } = guardTick(full, { dryRun: false });
    const head = text.slice(0, text.indexOf('FROM'));
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
