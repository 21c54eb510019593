// Pure tests of the persistence vectors: rows -> items -> findings, no database.
import { describe, expect, it } from 'vitest';
import {
  databaseMarker,
  mapOutsideQuotes,
  remediationByDatabase,
  splitQuoted,
  strs,
  unquote,
} from '../../src/checks/persistence/common.js';
import { CRON_DATABASE_SQL, cronJobCheck } from '../../src/checks/persistence/cron-job.js';
import { defaultAclCheck, revokeDefault } from '../../src/checks/persistence/default-acl.js';
import { eventTriggerCheck } from '../../src/checks/persistence/event-trigger.js';
import { grantedRolesCheck, revokeMembership } from '../../src/checks/persistence/granted-roles.js';
import {
  DATABASES_SQL,
  PERSISTENCE_CHECKS,
  SCAN_INCOMPLETE_ID,
  collectPersistence,
  persistenceCheck,
} from '../../src/checks/persistence/index.js';
import { ownedObjectsCheck } from '../../src/checks/persistence/owned-objects.js';
import { replicationSlotCheck } from '../../src/checks/persistence/replication-slot.js';
import { securityDefinerCheck } from '../../src/checks/persistence/security-definer.js';
import { subscriptionCheck } from '../../src/checks/persistence/subscription.js';
import { disableTrigger, triggerFunctionCheck } from '../../src/checks/persistence/trigger-function.js';
import type { Row } from '../../src/checks/persistence/types.js';
import { userMappingCheck } from '../../src/checks/persistence/user-mapping.js';
import type { PersistenceFacts, PersistenceItem, Queryable, RoleFacts } from '../../src/checks/types.js';
import type { ConnParams } from '../../src/pg/conninfo.js';
import { mapBounded } from '../../src/util/pool.js';

const HOSTILE = 'Mal"lory ünï';

function findings(facts: Partial<PersistenceFacts>) {
  return persistenceCheck.evaluate({ persistence: { databasesScanned: [], items: [], errors: [], ...facts } } as unknown as RoleFacts);
}

describe('the catalogue of checks', () => {
  it('has one check per kind, ids persistence.<kind>, $1 in every query and no other parameter', () => {
    const kinds = PERSISTENCE_CHECKS.map((c) => c.kind);
    expect(new Set(kinds).size).toBe(10);
    for (const c of PERSISTENCE_CHECKS) {
      expect(c.id).toBe(`persistence.${c.kind}`);
      expect(c.sql).toContain('$1');
      expect(c.sql).not.toMatch(/\$[2-9]/);
    }
    expect(
      PERSISTENCE_CHECKS.filter((c) => c.scope === 'cluster')
        .map((c) => c.kind)
        .sort(),
    ).toEqual(['cron_job', 'granted_roles', 'owned_objects', 'replication_slot', 'subscription']);
    expect(persistenceCheck.ids).toEqual([...PERSISTENCE_CHECKS.map((c) => c.id), SCAN_INCOMPLETE_ID]);
  });

  it('never selects the secret columns themselves', () => {
    expect(subscriptionCheck.sql).not.toMatch(/SELECT\s+s\.subconninfo\s+AS/i);
    expect(subscriptionCheck.sql).toMatch(/subconninfo ~\*/);
    expect(userMappingCheck.sql).not.toMatch(/umoptions\s+AS|srvoptions\s+AS/i);
  });
});

describe('helpers', () => {
  it('splits SQL text at identifiers quoted by ident(), whatever they contain', () => {
    expect(splitQuoted('"t""rg ON x" ON "s"."ta""ble"')).toEqual(['', '"t""rg ON x"', ' ON ', '"s"', '.', '"ta""ble"', '']);
    expect(unquote('"a""b"')).toBe('a"b');
    expect(mapOutsideQuotes('GRANT "GRANT" TO "TO"', (p) => p.toLowerCase())).toBe('grant "GRANT" to "TO"');
  });

  it('reads text[] columns parsed or as array literals', () => {
    expect(strs({ a: ['x', null, 'y'] }, 'a')).toEqual(['x', 'y']);
    expect(strs({ a: '{x,"y z","q\\"r"}' }, 'a')).toEqual(['x', 'y z', 'q"r']);
    expect(strs({ a: '{}' }, 'a')).toEqual([]);
    expect(strs({ a: null }, 'a')).toEqual([]);
  });

  it('keeps a database name from ending the comment that opens its block', () => {
    expect(databaseMarker('app"db')).toBe('-- in database "app""db":');
    expect(databaseMarker('x\nDROP TABLE t;--')).toBe('-- in database "x\\u000aDROP TABLE t;--":');
    expect(databaseMarker(null)).toBe('-- in any database:');
  });

  it('groups remediation by database in first-seen order', () => {
    const item = (database: string | null, name: string): PersistenceItem => ({
      kind: 'security_definer',
      database,
      name,
      detail: '',
      active: true,
    });
    const sql = remediationByDatabase([item('a', '1'), item('b', '2'), item('a', '3')], (i) => [`S ${i.name};`], ['note']);
    expect(sql).toBe(['-- note', '-- in database "a":', 'S 1;', 'S 3;', '-- in database "b":', 'S 2;'].join('\n'));
  });
});

describe('persistence.security_definer', () => {
  const rows: Row[] = [
    { schema: 'public', name: 'elevate', args: 'i integer', prokind: 'f', language: 'sql', executors: ['PUBLIC'] },
    { schema: 'Sch"ema', name: 'f"n()', args: '', prokind: 'p', language: 'plpgsql', executors: [] },
  ];
  const items = securityDefinerCheck.toItems(rows, 'appdb');

  it('names routines schema-qualified and quoted, as ALTER ROUTINE takes them', () => {
    expect(items.map((i) => [i.name, i.database, i.active])).toEqual([
      ['"public"."elevate"(i integer)', 'appdb', true],
      ['"Sch""ema"."f""n()"()', 'appdb', true],
    ]);
    expect(items[0]!.detail).toBe('SECURITY DEFINER function in sql, executable by PUBLIC');
    expect(items[1]!.detail).toMatch(/^SECURITY DEFINER procedure in plpgsql, executable by no one but the owner/);
  });

  it('is high, not an exposure, and says how to neutralise each routine in its database', () => {
    const [f, ...rest] = securityDefinerCheck.evaluate(items);
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ id: 'persistence.security_definer', severity: 'high', exposure: false });
    expect(f!.detail).toContain('"public"."elevate"(i integer) in database appdb');
    expect(f!.remediation).toContain(
      '-- in database "appdb":\nALTER ROUTINE "public"."elevate"(i integer) SECURITY INVOKER;\nALTER ROUTINE "Sch""ema"."f""n()"() SECURITY INVOKER;',
    );
    expect(securityDefinerCheck.evaluate([])).toEqual([]);
  });
});

describe('persistence.subscription', () => {
  const rows: Row[] = [
    { name: 'sub_on', database: 'postgres', enabled: true, slot: 'sub_on', publications: ['p'], has_password: true },
    { name: 'Sub"off', database: 'app', enabled: false, slot: null, publications: [], has_password: false },
    { name: 'hidden', database: 'app', enabled: 'f', slot: 'x', publications: '{a,b}', has_password: null },
  ];
  const items = subscriptionCheck.toItems(rows, null);

  it('takes the database from the row and says only whether a password is stored', () => {
    expect(items.map((i) => [i.name, i.database, i.active])).toEqual([
      ['"sub_on"', 'postgres', true],
      ['"Sub""off"', 'app', false],
      ['"hidden"', 'app', false],
    ]);
    expect(items[0]!.detail).toMatch(
      /^enabled: its apply worker keeps replicating as the role after NOLOGIN; publications p; remote slot sub_on; .*stores a password \(not shown\)/,
    );
    expect(items[1]!.detail).toMatch(/no remote slot; no password/);
    expect(items[2]!.detail).toMatch(/publications a, b; .*unknown whether/);
  });

  it('makes enabled subscriptions a critical exposure, disabled ones a medium finding', () => {
    const out = subscriptionCheck.evaluate(items);
    expect(out.map((f) => [f.id, f.severity, f.exposure])).toEqual([
      ['persistence.subscription', 'critical', true],
      ['persistence.subscription', 'medium', false],
    ]);
    expect(out[0]!.remediation).toContain('-- in database "postgres":\nALTER SUBSCRIPTION "sub_on" DISABLE;');
    expect(out[0]!.remediation).not.toContain('Sub');
    expect(out[1]!.remediation).toContain(
      '-- in database "app":\nALTER SUBSCRIPTION "Sub""off" SET (slot_name = NONE);\nDROP SUBSCRIPTION "Sub""off";',
    );
  });

  it('has no finding when only disabled, or none, exist', () => {
    expect(subscriptionCheck.evaluate(items.filter((i) => !i.active)).every((f) => !f.exposure)).toBe(true);
    expect(subscriptionCheck.evaluate([])).toEqual([]);
  });
});

describe('persistence.replication_slot', () => {
  const items = replicationSlotCheck.toItems(
    [
      {
        name: 'mal_slot',
        type: 'logical',
        plugin: 'pgoutput',
        database: 'appdb',
        temporary: false,
        pid: 42,
        client_addr: '10.0.0.9/32',
        application_name: 'sub',
      },
      { name: 'phys', type: 'physical', plugin: null, database: null, temporary: true, pid: 43, client_addr: null, application_name: '' },
    ],
    null,
  );

  it('lists slots attributed through their walsender, always active', () => {
    expect(items.map((i) => [i.name, i.database, i.active])).toEqual([
      ['mal_slot', 'appdb', true],
      ['phys', null, true],
    ]);
    expect(items[0]!.detail).toMatch(/^logical slot \(pgoutput\) streamed by walsender pid 42 from 10\.0\.0\.9\/32 \(sub\)/);
    expect(items[1]!.detail).toMatch(/^temporary physical slot streamed by walsender pid 43;/);
  });

  it('is a critical exposure; terminates the walsender and drops only persistent slots', () => {
    const [f] = replicationSlotCheck.evaluate(items);
    expect(f).toMatchObject({ severity: 'critical', exposure: true });
    expect(f!.remediation).toContain(
      "SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots WHERE slot_name = 'mal_slot' AND active_pid IS NOT NULL;",
    );
    expect(f!.remediation).toContain("SELECT pg_drop_replication_slot('mal_slot');");
    expect(f!.remediation).toContain("WHERE slot_name = 'phys'");
    expect(f!.remediation).not.toContain("pg_drop_replication_slot('phys')");
  });
});

describe('persistence.event_trigger', () => {
  const items = eventTriggerCheck.toItems(
    [
      {
        name: 'mal_ddl',
        event: 'ddl_command_start',
        enabled: 'O',
        owner: 'mallory',
        owned: true,
        function_schema: 'public',
        function_name: 'on_ddl',
        function_owned: true,
      },
      {
        name: 'Off"',
        event: 'login',
        enabled: 'D',
        owner: 'postgres',
        owned: false,
        function_schema: 'public',
        function_name: 'f',
        function_owned: true,
      },
    ],
    'appdb',
  );

  it('marks enabled ones active and says why each belongs to the role', () => {
    expect(items.map((i) => [i.name, i.active])).toEqual([
      ['"mal_ddl"', true],
      ['"Off"""', false],
    ]);
    expect(items[1]!.detail).toBe('disabled on login, runs "public"."f"(); owned by postgres, its function is owned by the role');
  });

  it('is high while one is enabled, and disables only the enabled ones', () => {
    const [f] = eventTriggerCheck.evaluate(items);
    expect(f).toMatchObject({ severity: 'high', exposure: false });
    expect(f!.remediation).toContain('ALTER EVENT TRIGGER "mal_ddl" DISABLE;');
    expect(f!.remediation).not.toContain('ALTER EVENT TRIGGER "Off"""');
    expect(eventTriggerCheck.evaluate(items.slice(1))[0]!.severity).toBe('medium');
  });
});

describe('persistence.trigger_function', () => {
  const items = triggerFunctionCheck.toItems(
    [
      {
        trigger: 't"rg ON x',
        table_schema: 'Sch ema',
        table_name: 'ta"ble',
        function_schema: 'public',
        function_name: 'skim',
        security_definer: true,
        enabled: 'O',
      },
      {
        trigger: 'off',
        table_schema: 'public',
        table_name: 'accounts',
        function_schema: 'public',
        function_name: 'skim',
        security_definer: false,
        enabled: 'D',
      },
    ],
    'appdb',
  );

  it('names trigger and table as DROP TRIGGER does', () => {
    expect(items.map((i) => [i.name, i.active])).toEqual([
      ['"t""rg ON x" ON "Sch ema"."ta""ble"', true],
      ['"off" ON "public"."accounts"', false],
    ]);
    expect(items[0]!.detail).toBe('enabled; runs "public"."skim"(), owned by the role, as SECURITY DEFINER');
  });

  it('takes a hostile name apart again for ALTER TABLE ... DISABLE TRIGGER', () => {
    expect(disableTrigger(items[0]!.name)).toBe('ALTER TABLE "Sch ema"."ta""ble" DISABLE TRIGGER "t""rg ON x";');
    const [f] = triggerFunctionCheck.evaluate(items);
    expect(f).toMatchObject({ severity: 'high', exposure: false });
    expect(f!.remediation).toContain('-- in database "appdb":\nALTER TABLE "Sch ema"."ta""ble" DISABLE TRIGGER "t""rg ON x";');
    expect(f!.remediation).not.toContain('"off"');
  });
});

describe('persistence.user_mapping', () => {
  const items = userMappingCheck.toItems(
    [
      { what: 'mapping', server: 'remote', role: HOSTILE, wrapper: 'postgres_fdw', option_names: ['user', 'password'], has_password: true },
      { what: 'mapping', server: 'other', role: 'mallory', wrapper: 'postgres_fdw', option_names: [], has_password: null },
      { what: 'server', server: 'mal_srv', role: 'mallory', wrapper: 'postgres_fdw', option_names: ['host'], has_password: false },
    ],
    'appdb',
  );

  it('names the options, never their values', () => {
    expect(items.map((i) => i.name)).toEqual([
      'USER MAPPING FOR "Mal""lory ünï" SERVER "remote"',
      'USER MAPPING FOR "mallory" SERVER "other"',
      'SERVER "mal_srv"',
    ]);
    expect(items[0]!.detail).toBe(
      'postgres_fdw mapping; options user, password (values not shown); stores a password: rotate it on the remote server',
    );
    expect(items[1]!.detail).toBe('postgres_fdw mapping; options not visible to you; unknown whether it stores a password');
    expect(items[2]!.detail).toBe('postgres_fdw foreign server owned by the role; options host (values not shown)');
  });

  it('drops mappings and takes over servers', () => {
    const [f] = userMappingCheck.evaluate(items);
    expect(f).toMatchObject({
      severity: 'medium',
      exposure: false,
      title: '2 user mappings and 1 foreign server of the role hold remote access',
    });
    expect(f!.remediation).toContain('DROP USER MAPPING FOR "Mal""lory ünï" SERVER "remote";');
    expect(f!.remediation).toContain('ALTER SERVER "mal_srv" OWNER TO CURRENT_USER;');
  });
});

describe('persistence.default_acl', () => {
  const items = defaultAclCheck.toItems(
    [
      { role: 'mallory', schema: null, objtype: 'r', grantee: null, privileges: ['SELECT'], grantable: false },
      { role: HOSTILE, schema: 'S "TO" GRANT', objtype: 'S', grantee: 'TO', privileges: ['SELECT', 'USAGE'], grantable: true },
    ],
    'appdb',
  );

  it('names each grant as the ALTER DEFAULT PRIVILEGES tail that made it', () => {
    expect(items.map((i) => i.name)).toEqual([
      'FOR ROLE "mallory" GRANT SELECT ON TABLES TO PUBLIC',
      'FOR ROLE "Mal""lory ünï" IN SCHEMA "S ""TO"" GRANT" GRANT SELECT, USAGE ON SEQUENCES TO "TO"',
    ]);
    expect(items[1]!.detail).toBe('new sequences it creates in schema S "TO" GRANT are granted to TO WITH GRANT OPTION');
  });

  it('revokes them, touching keywords only, never names', () => {
    expect(revokeDefault(items[1]!.name)).toBe(
      'ALTER DEFAULT PRIVILEGES FOR ROLE "Mal""lory ünï" IN SCHEMA "S ""TO"" GRANT" REVOKE SELECT, USAGE ON SEQUENCES FROM "TO";',
    );
    const [f] = defaultAclCheck.evaluate(items);
    expect(f).toMatchObject({ severity: 'low', exposure: false });
    expect(f!.remediation).toContain('ALTER DEFAULT PRIVILEGES FOR ROLE "mallory" REVOKE SELECT ON TABLES FROM PUBLIC;');
  });
});

describe('persistence.owned_objects', () => {
  const items = ownedObjectsCheck.toItems(
    [
      { dbid: '0', database: null, catalog: 'pg_database', deptype: 'o', n: 1, role: HOSTILE },
      { dbid: '0', database: null, catalog: 'pg_auth_members', deptype: 'a', n: 2, role: HOSTILE },
      { dbid: '16384', database: 'appdb', catalog: 'pg_class', deptype: 'o', n: 3, role: HOSTILE },
      { dbid: '16384', database: 'appdb', catalog: 'pg_proc', deptype: 'o', n: 2, role: HOSTILE },
      { dbid: '16384', database: 'appdb', catalog: 'pg_class', deptype: 'a', n: 5, role: HOSTILE },
    ],
    null,
  );

  it('counts per database and catalog; shared objects have no database', () => {
    expect(items.map((i) => [i.database, i.name])).toEqual([
      [null, '"Mal""lory ünï" owns pg_database: 1; granted pg_auth_members: 2'],
      ['appdb', '"Mal""lory ünï" owns pg_class: 3, pg_proc: 2; has privileges on pg_class: 5'],
    ]);
    expect(items[1]!.detail).toMatch(/^10 dependent objects in this database/);
    expect(items[0]!.detail).toMatch(/^3 shared objects/);
  });

  it('reassigns and drops per database, with the role quoted', () => {
    const [f] = ownedObjectsCheck.evaluate(items);
    expect(f).toMatchObject({ severity: 'low', exposure: false });
    expect(f!.remediation).toContain(
      '-- in database "appdb":\nREASSIGN OWNED BY "Mal""lory ünï" TO CURRENT_USER;\nDROP OWNED BY "Mal""lory ünï";',
    );
    expect(f!.remediation).not.toContain('-- in any database:');
    expect(ownedObjectsCheck.evaluate(items.slice(0, 1))[0]!.remediation).toContain('-- in any database:\nREASSIGN OWNED BY');
  });
});

describe('persistence.granted_roles', () => {
  const row = (role: string, member: string, grantor: string | null, rel: 'of' | 'by_member' | 'by_grantor', extra: Row = {}): Row => ({
    role,
    member,
    grantor,
    of_role: rel === 'of',
    by_member: rel === 'by_member',
    by_grantor: rel === 'by_grantor',
    admin_option: false,
    inherit_option: null,
    set_option: null,
    ...extra,
  });
  const items = grantedRolesCheck.toItems(
    [
      row('pg_read_all_data', 'mallory', 'postgres', 'by_member'),
      row('mallory', 'henchman', 'postgres', 'of', { inherit_option: true, set_option: false }),
      row('team', 'sleeper', 'mallory', 'by_grantor'),
      row('team', 'mallory', null, 'by_member', { admin_option: true }),
    ],
    null,
  );

  it('classifies each membership and names it as the GRANT that made it', () => {
    expect(items.map((i) => [i.name, i.detail.split(':')[0]])).toEqual([
      ['"pg_read_all_data" TO "mallory" GRANTED BY "postgres"', 'held by the role'],
      ['"mallory" TO "henchman" GRANTED BY "postgres"', 'acts as the role'],
      ['"team" TO "sleeper" GRANTED BY "mallory"', 'granted by the role'],
      ['"team" TO "mallory"', 'held by the role'],
    ]);
    expect(items[1]!.detail).toContain('(INHERIT TRUE, SET FALSE)');
    expect(items[3]!.detail).toContain('(WITH ADMIN OPTION)');
    expect(items.every((i) => i.database === null && !i.active)).toBe(true);
  });

  it('revokes grants made by the role before the admin option they depend on', () => {
    const [f] = grantedRolesCheck.evaluate(items);
    expect(f).toMatchObject({ severity: 'high', exposure: false });
    const stmts = f!.remediation.split('\n').filter((l) => !l.startsWith('--'));
    expect(stmts).toEqual([
      'REVOKE "team" FROM "sleeper" GRANTED BY "mallory";',
      'REVOKE "mallory" FROM "henchman" GRANTED BY "postgres";',
      'REVOKE "pg_read_all_data" FROM "mallory" GRANTED BY "postgres";',
      'REVOKE "team" FROM "mallory";',
    ]);
    expect(revokeMembership('"A TO B" TO "TO"')).toBe('REVOKE "A TO B" FROM "TO";');
  });

  it('is medium when the role only holds memberships', () => {
    expect(grantedRolesCheck.evaluate([items[0]!])[0]!.severity).toBe('medium');
  });
});

describe('persistence.cron_job', () => {
  const items = cronJobCheck.toItems(
    [
      {
        jobid: '12',
        jobname: 'nightly',
        schedule: '0 3 * * *',
        command: "SELECT dblink_exec('host=x password=hunter2', 'DELETE FROM t')",
        target_database: 'appdb',
        active: true,
      },
      { jobid: '13', jobname: null, schedule: '* * * * *', command: `SELECT ${'x'.repeat(400)}`, target_database: null, active: false },
    ],
    'postgres',
  );

  it('reads cron.database_name without failing when pg_cron is absent', () => {
    expect(CRON_DATABASE_SQL).toContain("current_setting('cron.database_name', true)");
  });

  it('lists jobs in the pg_cron database, command redacted and shortened', () => {
    expect(items.map((i) => [i.name, i.database, i.active])).toEqual([
      ['job 12 (nightly)', 'postgres', true],
      ['job 13', 'postgres', false],
    ]);
    expect(items[0]!.detail).toContain("active, schedule '0 3 * * *' in database appdb: SELECT dblink_exec('host=x password=*****");
    expect(items[0]!.detail).not.toContain('hunter2');
    expect(items[1]!.detail.length).toBeLessThan(220);
    expect(items[1]!.detail).toMatch(/\.\.\.$/);
  });

  it('makes active jobs an exposure and unschedules by id in the cron database', () => {
    const out = cronJobCheck.evaluate(items);
    expect(out.map((f) => [f.severity, f.exposure])).toEqual([
      ['high', true],
      ['low', false],
    ]);
    expect(out[0]!.remediation).toContain('-- in database "postgres":\nSELECT cron.unschedule(12);');
    expect(out[1]!.remediation).toContain('SELECT cron.unschedule(13);');
    expect(cronJobCheck.toItems([], 'postgres')).toEqual([]);
    expect(cronJobCheck.evaluate([])).toEqual([]);
  });
});

describe('persistenceCheck.evaluate', () => {
  const item = (kind: PersistenceItem['kind'], active: boolean): PersistenceItem => ({
    kind,
    database: 'appdb',
    name: '"x"',
    detail: 'd',
    active,
  });

  it('feeds each check only its own kind', () => {
    const out = findings({ items: [item('security_definer', true), item('default_acl', false)] });
    expect(out.map((f) => f.id)).toEqual(['persistence.security_definer', 'persistence.default_acl']);
  });

  it('is an exposure only for what keeps running by itself', () => {
    const all = PERSISTENCE_CHECKS.map((c) => item(c.kind, true));
    const exposing = new Set(
      findings({ items: all })
        .filter((f) => f.exposure)
        .map((f) => f.id),
    );
    expect([...exposing].sort()).toEqual(['persistence.cron_job', 'persistence.replication_slot', 'persistence.subscription']);
    expect(findings({ items: PERSISTENCE_CHECKS.map((c) => item(c.kind, false)) }).filter((f) => f.exposure)).toEqual([]);
  });

  it('reports an incomplete scan, with every database and sqlstate', () => {
    const out = findings({
      errors: [
        { database: 'lockeddb', sqlstate: '28000', message: 'pg_hba.conf rejects connection' },
        { database: 'other', message: 'persistence.user_mapping: permission denied' },
      ],
    });
    expect(out).toEqual([expect.objectContaining({ id: SCAN_INCOMPLETE_ID, severity: 'medium', exposure: false })]);
    expect(out[0]!.detail).toContain('- lockeddb: pg_hba.conf rejects connection [28000]');
    expect(out[0]!.detail).toContain('- other: persistence.user_mapping: permission denied');
    expect(findings({})).toEqual([]);
  });
});

describe('collectPersistence without a reachable database', () => {
  // nothing listens on port 1: every per-database connection is refused at once
  const params: ConnParams = {
    host: '127.0.0.1',
    port: 1,
    user: 'u',
    database: 'postgres',
    connectTimeout: 2,
    applicationName: 't',
    sslmode: 'disable',
  };

  it('runs each cluster query once with the role OID, and turns refused databases into errors', async () => {
    const calls: { text: string; values?: unknown[] }[] = [];
    const main: Queryable = {
      async query<R extends object>(text: string, values?: unknown[]) {
        calls.push({ text, values });
        if (text === DATABASES_SQL) return { rows: [{ datname: 'b' }, { datname: 'a' }] as unknown as R[] };
        if (text === CRON_DATABASE_SQL) return { rows: [{ database: 'crondb' }] as unknown as R[] };
        if (text === grantedRolesCheck.sql) throw Object.assign(new Error('permission denied for pg_auth_members'), { code: '42501' });
        if (text === subscriptionCheck.sql)
          return { rows: [{ name: 's', database: 'postgres', enabled: true, publications: [], has_password: false }] as unknown as R[] };
        return { rows: [] };
      },
    };
    const facts = await collectPersistence(params, main, { roleOid: 4242, roleName: 'mallory' }, { allDatabases: true, concurrency: 2 });
    for (const c of PERSISTENCE_CHECKS.filter((c) => c.scope === 'cluster' && c.kind !== 'cron_job'))
      expect(calls.filter((q) => q.text === c.sql)).toEqual([{ text: c.sql, values: [4242] }]);
    expect(calls.find((q) => q.text === DATABASES_SQL)!.values).toEqual([4242, true]);
    expect(facts.items).toEqual([expect.objectContaining({ kind: 'subscription', name: '"s"', active: true })]);
    expect(facts.databasesScanned).toEqual([]);
    expect(facts.errors).toEqual([
      expect.objectContaining({ database: 'a', sqlstate: '08001' }),
      expect.objectContaining({ database: 'b', sqlstate: '08001' }),
      expect.objectContaining({ database: 'crondb', sqlstate: '08001', message: expect.stringMatching(/^persistence\.cron_job: /) }),
      { database: 'postgres', sqlstate: '42501', message: 'persistence.granted_roles: permission denied for pg_auth_members' },
    ]);
  });

  it('skips pg_cron entirely when cron.database_name is unset', async () => {
    const main: Queryable = {
      async query<R extends object>(text: string) {
        return { rows: (text === CRON_DATABASE_SQL ? [{ database: null }] : []) as unknown as R[] };
      },
    };
    const facts = await collectPersistence(params, main, { roleOid: 1, roleName: 'r' }, { allDatabases: false, concurrency: 1 });
    expect(facts).toEqual({ databasesScanned: [], items: [], errors: [] });
  });
});

describe('mapBounded', () => {
  it('keeps input order and never runs more than the limit at once', async () => {
    for (const limit of [1, 3, 100, 0, Number.NaN]) {
      let running = 0;
      let peak = 0;
      const out = await mapBounded([5, 1, 4, 2, 3], limit, async (n) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, n));
        running--;
        return n * 10;
      });
      expect(out).toEqual([50, 10, 40, 20, 30]);
      expect(peak).toBe(Math.min(5, Math.max(1, Math.floor(limit) || 1)));
    }
    expect(await mapBounded([], 4, async () => 1)).toEqual([]);
  });
});
