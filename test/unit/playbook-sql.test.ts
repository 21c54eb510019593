// The write-SQL builders, checked as strings: quoting of hostile names, OID/pid validation, and the
// shape of the one critical round trip.
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hiddenBackendsSql } from '../../src/checks/hidden-backends.js';
import { ACTIVITY_COLUMNS } from '../../src/checks/sessions.js';
import { redact } from '../../src/pg/redact.js';
import {
  contain,
  disableSubscription,
  dropOwned,
  dropRole,
  hiddenScan,
  MASK,
  nologin,
  oidArray,
  pidArray,
  reapply,
  reassignOwned,
  restoreRole,
  rollbackPrepared,
  roleState,
  rotatePassword,
  scramVerifier,
  settleRound,
  terminate,
  blockers,
  terminateListed,
  terminatePids,
} from '../../src/playbook/sql.js';

const HOSTILE = `Robert'); DROP TABLE x;--`;
const QUOTE = 'a"b';
const UNI = 'ÜNI 𝔐';
const plain = (name: string, extra: Partial<{ superuser: boolean; createRole: boolean }> = {}) => ({
  name,
  superuser: false,
  createRole: false,
  ...extra,
});

describe('nologin', () => {
  it('is one ALTER ROLE per target, names always quoted and never folded', () => {
    expect(nologin([plain('UPPER'), plain('upper')])).toEqual([
      'ALTER ROLE "UPPER" NOLOGIN CONNECTION LIMIT 0',
      'ALTER ROLE "upper" NOLOGIN CONNECTION LIMIT 0',
    ]);
  });

  it('quotes hostile names as identifiers', () => {
    expect(nologin([plain(HOSTILE), plain(QUOTE), plain(UNI)])).toEqual([
      `ALTER ROLE "Robert'); DROP TABLE x;--" NOLOGIN CONNECTION LIMIT 0`,
      'ALTER ROLE "a""b" NOLOGIN CONNECTION LIMIT 0',
      'ALTER ROLE "ÜNI 𝔐" NOLOGIN CONNECTION LIMIT 0',
    ]);
  });

  it('strips SUPERUSER and CREATEROLE from a target that has either, unless told not to', () => {
    expect(nologin([plain('s', { superuser: true })])).toEqual(['ALTER ROLE "s" NOLOGIN CONNECTION LIMIT 0 NOSUPERUSER NOCREATEROLE']);
    expect(nologin([plain('c', { createRole: true })])).toEqual(['ALTER ROLE "c" NOLOGIN CONNECTION LIMIT 0 NOSUPERUSER NOCREATEROLE']);
    expect(nologin([plain('s', { superuser: true })], { strip: false })).toEqual(['ALTER ROLE "s" NOLOGIN CONNECTION LIMIT 0']);
  });

  it('refuses a NUL byte', () => {
    expect(() => nologin([plain('a\0b')])).toThrow(/NUL/);
  });

  it('has an undo built from the attributes recorded before', () => {
    expect(restoreRole({ name: QUOTE, canLogin: true, connectionLimit: -1, superuser: true, createRole: false })).toBe(
      'ALTER ROLE "a""b" LOGIN CONNECTION LIMIT -1 SUPERUSER',
    );
    expect(restoreRole({ name: 'x', canLogin: false, connectionLimit: 5, superuser: false, createRole: true })).toBe(
      'ALTER ROLE "x" NOLOGIN CONNECTION LIMIT 5 CREATEROLE',
    );
  });
});

describe('rotatePassword', () => {
  it('sends a SCRAM verifier of a random password and shows only *****', () => {
    const a = rotatePassword(HOSTILE);
    const b = rotatePassword(HOSTILE);
    expect(a.display).toBe(`ALTER ROLE "Robert'); DROP TABLE x;--" PASSWORD ${MASK}`);
    expect(a.sql).toMatch(
      /^ALTER ROLE "Robert'\); DROP TABLE x;--" PASSWORD 'SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'$/,
    );
    expect(a.sql).not.toBe(b.sql); // fresh password and salt every time
    // the verifier is registered as a secret: nothing rendered can carry it
    const verifier = /'(SCRAM[^']+)'/.exec(a.sql)![1]!;
    expect(redact(`oops ${verifier}`)).toBe('oops *****');
  });

  it('computes the verifier the way PostgreSQL checks it (RFC 5802)', () => {
    const salt = Buffer.from('0123456789abcdef');
    const v = scramVerifier('pencil', salt, 4096);
    const salted = pbkdf2Sync('pencil', salt, 4096, 32, 'sha256');
    const stored = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
    const server = createHmac('sha256', salted).update('Server Key').digest('base64');
    expect(v).toBe(`SCRAM-SHA-256$4096:${salt.toString('base64')}$${stored}:${server}`);
  });
});

describe('terminate and scans', () => {
  it('terminates by OID and returns the forensic columns in the same statement', () => {
    const sql = terminate([16384, 16385]);
    expect(sql).toBe(
      `SELECT ${ACTIVITY_COLUMNS}, pg_terminate_backend(a.pid) AS terminated\nFROM pg_stat_activity a\nWHERE a.usesysid = ANY('{16384,16385}'::oid[]) AND a.pid <> pg_backend_pid()`,
    );
  });

  it('validates OIDs and pids as integers', () => {
    for (const bad of [1.5, -1, 0, Number.NaN, 2 ** 32]) expect(() => oidArray([bad])).toThrow(/invalid OID/);
    expect(() => oidArray([])).toThrow();
    expect(() => terminate([`1}'::oid[]); DROP TABLE x; --` as unknown as number])).toThrow(/invalid OID/);
    expect(() => pidArray([1.2])).toThrow(/invalid pid/);
    expect(pidArray([7, 8])).toBe(`'{7,8}'::int[]`);
  });

  it('reuses the hidden-backend scan of the checks', () => {
    expect(hiddenScan(14)).toBe(hiddenBackendsSql(14).trim());
    expect(hiddenScan(18)).toBe(hiddenBackendsSql(18).trim());
    expect(hiddenScan(18)).toContain(`state = 'starting'`);
  });

  it('terminates hidden pids only while they are not another role\u2019s visible session', () => {
    expect(terminatePids([101, 102], [16384])).toBe(
      `SET LOCAL lock_timeout = '250ms';\nSELECT p.pid, pg_terminate_backend(p.pid) AS terminated\nFROM unnest('{101,102}'::int[]) AS p(pid)\n` +
        `WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a\n                  WHERE a.pid = p.pid AND a.usesysid IS NOT NULL AND a.usesysid <> ALL('{16384}'::oid[]))`,
    );
  });

  it('reads role state by OID', () => {
    expect(roleState([5, 6])).toContain(`WHERE oid = ANY('{5,6}'::oid[])`);
  });
});

describe('the critical round trip', () => {
  const targets = [
    { name: 'upper', oid: 16390, superuser: false, createRole: false },
    { name: HOSTILE, oid: 16391, superuser: true, createRole: false },
  ];

  it('is ALTERs, COMMIT, the commit time, terminate (all OIDs at once), hidden scan: one simple-query text', () => {
    const c = contain(targets, 15);
    expect(c.sql).toBe(c.display);
    expect(c.sql.split(';\n')).toEqual([
      'SET LOCAL synchronous_commit = local',
      "SET LOCAL lock_timeout = '250ms'",
      'ALTER ROLE "upper" NOLOGIN CONNECTION LIMIT 0',
      `ALTER ROLE "Robert'); DROP TABLE x;--" NOLOGIN CONNECTION LIMIT 0 NOSUPERUSER NOCREATEROLE`,
      'COMMIT',
      "SET LOCAL lock_timeout = '250ms'",
      'SELECT clock_timestamp()::text AS committed_at, pg_current_wal_insert_lsn()::text AS commit_lsn',
      terminate([16390, 16391]),
      hiddenScan(15),
    ]);
  });

  it('puts the password rotation before the COMMIT and masks it in the shown form', () => {
    const c = contain(targets, 18, { rotatePassword: true });
    const shown = c.display.split(';\n');
    expect(shown.slice(0, 7)).toEqual([
      'SET LOCAL synchronous_commit = local',
      "SET LOCAL lock_timeout = '250ms'",
      'ALTER ROLE "upper" NOLOGIN CONNECTION LIMIT 0',
      `ALTER ROLE "Robert'); DROP TABLE x;--" NOLOGIN CONNECTION LIMIT 0 NOSUPERUSER NOCREATEROLE`,
      `ALTER ROLE "upper" PASSWORD '*****'`,
      `ALTER ROLE "Robert'); DROP TABLE x;--" PASSWORD '*****'`,
      'COMMIT',
    ]);
    expect(c.sql).toContain("PASSWORD 'SCRAM-SHA-256$4096:");
    expect(c.display).not.toContain('SCRAM');
  });

  it('settle round and re-apply have fixed texts', () => {
    const wait = "SET LOCAL lock_timeout = '250ms'";
    expect(settleRound([1], 14)).toBe(`${wait};\n${terminate([1])};\n${hiddenScan(14)};\n${roleState([1])}`);
    expect(reapply([plain('a"b', { superuser: true })], 14)).toBe(
      `${wait};\nALTER ROLE "a""b" NOLOGIN CONNECTION LIMIT 0 NOSUPERUSER NOCREATEROLE;\nCOMMIT;\n${wait};\n${hiddenScan(14)}`,
    );
  });

  it('after a lock timeout, lists the targets and catalog-lock holders without reading pg_authid or pg_stat_activity', () => {
    const b = blockers([16390, 16391]);
    expect(b).toContain('FROM pg_stat_get_activity(NULL) a');
    expect(b).not.toMatch(/pg_authid|pg_stat_activity\b|pg_roles|pg_terminate_backend/);
    expect(b).toContain(`a.usesysid = ANY('{16390,16391}'::oid[]) AS target`);
    expect(b).toContain(`l.relation = 1260 AND l.mode IN ('RowShareLock', 'RowExclusiveLock')`);
    expect(() => blockers([])).toThrow(/no role OIDs/);
    expect(terminateListed([7, 8])).toBe(
      `SET LOCAL lock_timeout = '250ms';\nSELECT p.pid, pg_terminate_backend(p.pid) AS terminated FROM unnest('{7,8}'::int[]) AS p(pid)`,
    );
  });
});

describe('what outlives sessions', () => {
  it('rolls back a prepared transaction by its gid as a literal', () => {
    expect(rollbackPrepared(HOSTILE)).toBe(`ROLLBACK PREPARED 'Robert''); DROP TABLE x;--'`);
    expect(rollbackPrepared('back\\slash')).toBe(`ROLLBACK PREPARED E'back\\\\slash'`);
  });

  it('disables a subscription, reassigns, drops owned and the role, all quoted', () => {
    expect(disableSubscription(QUOTE)).toBe('ALTER SUBSCRIPTION "a""b" DISABLE');
    expect(reassignOwned(UNI, 'UPPER')).toBe('REASSIGN OWNED BY "ÜNI 𝔐" TO "UPPER"');
    expect(dropOwned(HOSTILE)).toBe(`DROP OWNED BY "Robert'); DROP TABLE x;--"`);
    expect(dropRole('upper')).toBe('DROP ROLE "upper"');
    expect(dropRole('UPPER')).toBe('DROP ROLE "UPPER"');
  });
});
