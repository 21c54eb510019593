// Persistence that outlives NOLOGIN, staged for real on each major, then found, evaluated and
// (with the remediation SQL the findings print) removed again.
import { promises as fs } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectPersistence, persistenceCheck } from '../../src/checks/persistence/index.js';
import type { Finding, PersistenceFacts, PersistenceItem, PersistenceKind, Queryable, RoleFacts } from '../../src/checks/types.js';
import { resolveConnParams, type ConnParams } from '../../src/pg/conninfo.js';
import { ident } from '../../src/pg/quote.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const HOSTILE = 'Mal"lory ünï';
const SCHEMA = 'Sch"ema ünï';
const SUB_PW = 'hunter2';
const UM_PW = 'secret';
const HOSTILE_UM_PW = 'hostile-um-pw';
const SECRETS = [SUB_PW, UM_PW, HOSTILE_UM_PW];

interface Role {
  oid: number;
  name: string;
}

function evaluate(facts: PersistenceFacts): Finding[] {
  return persistenceCheck.evaluate({ persistence: facts } as unknown as RoleFacts);
}

function of(facts: PersistenceFacts, kind: PersistenceKind): PersistenceItem[] {
  return facts.items.filter((i) => i.kind === kind);
}

function pick(facts: PersistenceFacts, kind: PersistenceKind, name: string): PersistenceItem {
  const item = facts.items.find((i) => i.kind === kind && i.name === name);
  if (!item) throw new Error(`no ${kind} item named ${name} in ${JSON.stringify(of(facts, kind).map((i) => i.name))}`);
  return item;
}

describe.each(MAJORS)('persistence on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let params: ConnParams;
  let mallory: Role;
  let hostile: Role;
  let alice: Role;

  const roleOf = async (name: string): Promise<Role> => {
    const [r] = await cl.sql<{ oid: number }>('SELECT oid::int8::int AS oid FROM pg_roles WHERE rolname = $1', [name]);
    return { oid: Number(r!.oid), name };
  };
  const collect = (
    role: Role,
    opts: Partial<{ allDatabases: boolean; concurrency: number }> = {},
    main: Queryable = cl.admin,
    p = params,
  ) => collectPersistence(p, main, { roleOid: role.oid, roleName: role.name }, { allDatabases: false, concurrency: 4, ...opts });

  /** Run a finding's remediation: each `-- in database X:` block in X, one statement per line. */
  const runRemediation = async (sql: string) => {
    let db: string | null | undefined;
    for (const line of sql.split('\n')) {
      const m = /^-- in (?:database ("(?:[^"]|"")*")|any database):$/.exec(line);
      if (m) {
        db = m[1] ? m[1].slice(1, -1).replace(/""/g, '"') : null;
        continue;
      }
      if (line.startsWith('--') || !line.trim()) continue;
      if (db === undefined) throw new Error(`statement outside a database block: ${line}`);
      const c = await cl.connectAs('postgres', cl.password, db ?? 'postgres');
      try {
        await c.query(line);
      } finally {
        await c.end();
      }
    }
  };

  beforeAll(async () => {
    // the test walsender never answers keepalives
    cl = await startCluster(major, { wal_sender_timeout: 0 });
    params = resolveConnParams({ dsn: cl.dsn() }, {});
    await cl.sql(`CREATE ROLE mallory LOGIN SUPERUSER PASSWORD 'mal-pw'`);
    await cl.sql(`CREATE ROLE ${ident(HOSTILE)} LOGIN SUPERUSER PASSWORD 'hos-pw'`);
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'alice-pw'`);
    await cl.sql(`CREATE ROLE henchman LOGIN PASSWORD 'h-pw'`);
    await cl.sql(`CREATE ROLE sleeper LOGIN PASSWORD 's-pw'`);
    await cl.sql(`CREATE ROLE auditor LOGIN PASSWORD 'aud-pw'`);
    await cl.sql(`CREATE ROLE team NOLOGIN`);
    await cl.sql(`GRANT pg_read_all_data TO mallory`);
    await cl.sql(`GRANT team TO mallory WITH ADMIN OPTION`);
    await cl.sql(`GRANT team TO sleeper GRANTED BY mallory`);
    await cl.sql(`GRANT mallory TO henchman`);
    await cl.sql(`GRANT team TO ${ident(HOSTILE)}`);
    for (const db of ['appdb', 'otherdb', 'lockeddb']) await cl.sql(`CREATE DATABASE ${db}`);

    const app = await cl.connectAs('postgres', cl.password, 'appdb');
    await app.query(`
      CREATE EXTENSION postgres_fdw;
      CREATE TABLE public.accounts (id int PRIMARY KEY, balance int);
      SET ROLE mallory;
      CREATE FUNCTION public.elevate(i integer) RETURNS integer LANGUAGE sql SECURITY DEFINER AS 'SELECT i';
      CREATE PROCEDURE public.sweep() LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
      CREATE FUNCTION public.harmless() RETURNS integer LANGUAGE sql AS 'SELECT 1';
      CREATE FUNCTION public.skim() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
      CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
      CREATE EVENT TRIGGER mal_ddl ON ddl_command_start EXECUTE FUNCTION public.on_ddl();
      ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;
      ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO henchman;
      CREATE SERVER mal_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '1', dbname 'nowhere');
      RESET ROLE;
      CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '1', dbname 'nowhere');
      CREATE USER MAPPING FOR mallory SERVER remote OPTIONS (user 'x', password '${UM_PW}');
      CREATE TRIGGER skim_trg BEFORE INSERT ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.skim();
      CREATE TRIGGER skim_off BEFORE UPDATE ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.skim();
      ALTER TABLE public.accounts DISABLE TRIGGER skim_off;
      CREATE FUNCTION public.alice_sd() RETURNS integer LANGUAGE sql SECURITY DEFINER AS 'SELECT 2';
      ALTER FUNCTION public.alice_sd() OWNER TO alice;
      CREATE SCHEMA ${ident(SCHEMA)};
      CREATE TABLE ${ident(SCHEMA)}.${ident('ta"ble ON x')} (id int);
      SET ROLE ${ident(HOSTILE)};
      CREATE FUNCTION ${ident(SCHEMA)}.${ident('f"n()')}(a text) RETURNS text LANGUAGE sql SECURITY DEFINER AS 'SELECT a';
      CREATE FUNCTION ${ident(SCHEMA)}.${ident('trg" fn')}() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
      RESET ROLE;
      CREATE TRIGGER ${ident('t"rg ON x')} BEFORE INSERT ON ${ident(SCHEMA)}.${ident('ta"ble ON x')}
        FOR EACH ROW EXECUTE FUNCTION ${ident(SCHEMA)}.${ident('trg" fn')}();
      CREATE USER MAPPING FOR ${ident(HOSTILE)} SERVER remote OPTIONS (user 'y', password '${HOSTILE_UM_PW}');
      ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(HOSTILE)} IN SCHEMA ${ident(SCHEMA)} GRANT SELECT ON TABLES TO alice;
    `);
    await app.query(`SELECT pg_create_logical_replication_slot('mal_slot', 'test_decoding')`);

    // subscriptions need no reachable publisher with connect = false; ENABLE works without one too
    const conn = 'host=127.0.0.1 port=1 dbname=nowhere';
    await cl.sql(`CREATE SUBSCRIPTION sub_on CONNECTION '${conn} user=x password=${SUB_PW}' PUBLICATION p WITH (connect = false)`);
    await cl.sql(`CREATE SUBSCRIPTION sub_off CONNECTION '${conn} password=${SUB_PW}' PUBLICATION p WITH (connect = false)`);
    await cl.sql(
      `CREATE SUBSCRIPTION sub_uri CONNECTION 'postgresql://x:${SUB_PW}@127.0.0.1:1/nowhere' PUBLICATION p WITH (connect = false)`,
    );
    await cl.sql(`CREATE SUBSCRIPTION sub_nopw CONNECTION '${conn}' PUBLICATION p WITH (connect = false)`);
    for (const s of ['sub_on', 'sub_off', 'sub_uri', 'sub_nopw']) await cl.sql(`ALTER SUBSCRIPTION ${s} OWNER TO mallory`);
    await cl.sql(`ALTER SUBSCRIPTION sub_on ENABLE`);

    // a walsender of mallory streaming from mal_slot
    const rep = await cl.connectAs('mallory', 'mal-pw', 'appdb', { replication: 'database' } as unknown as Partial<pg.ClientConfig>);
    rep.query('START_REPLICATION SLOT mal_slot LOGICAL 0/0').catch(() => undefined);
    await waitFor(
      async () => (await app.query(`SELECT active FROM pg_replication_slots WHERE slot_name = 'mal_slot'`)).rows[0]?.active === true,
    );

    // lockeddb holds something of mallory but refuses every TCP login
    const locked = await cl.connectAs('postgres', cl.password, 'lockeddb');
    await locked.query('CREATE TABLE t (id int); ALTER TABLE t OWNER TO mallory');
    await locked.end();
    const hba = await fs.readFile(cl.hbaFile, 'utf8');
    await cl.writeDataFile('pg_hba.conf', `host lockeddb all 127.0.0.1/32 reject\n${hba}`);
    await cl.sql('SELECT pg_reload_conf()');
    await waitFor(() =>
      cl
        .connectAs('postgres', cl.password, 'lockeddb')
        .then((c) => c.end().then(() => false))
        .catch(() => true),
    );

    mallory = await roleOf('mallory');
    hostile = await roleOf(HOSTILE);
    alice = await roleOf('alice');
  }, 180_000);

  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('finds every staged vector of mallory, each in its database', async () => {
    const facts = await collect(mallory);
    expect(facts.databasesScanned).toEqual(['appdb']);
    expect(facts.errors).toEqual([expect.objectContaining({ database: 'lockeddb', sqlstate: '28000' })]);

    expect(of(facts, 'subscription').map((i) => [i.name, i.database, i.active])).toEqual([
      ['"sub_nopw"', 'postgres', false],
      ['"sub_off"', 'postgres', false],
      ['"sub_on"', 'postgres', true],
      ['"sub_uri"', 'postgres', false],
    ]);
    expect(pick(facts, 'subscription', '"sub_on"').detail).toMatch(/stores a password/);
    expect(pick(facts, 'subscription', '"sub_uri"').detail).toMatch(/stores a password/);
    expect(pick(facts, 'subscription', '"sub_nopw"').detail).toMatch(/no password/);

    expect(of(facts, 'replication_slot')).toEqual([expect.objectContaining({ name: 'mal_slot', database: 'appdb', active: true })]);

    expect(of(facts, 'security_definer').map((i) => [i.name, i.database, i.active])).toEqual([
      ['"public"."elevate"(i integer)', 'appdb', true],
      ['"public"."sweep"()', 'appdb', true],
    ]);
    expect(pick(facts, 'security_definer', '"public"."elevate"(i integer)').detail).toMatch(/executable by PUBLIC/);

    expect(of(facts, 'event_trigger')).toEqual([expect.objectContaining({ name: '"mal_ddl"', database: 'appdb', active: true })]);
    expect(of(facts, 'trigger_function').map((i) => [i.name, i.database, i.active])).toEqual([
      ['"skim_off" ON "public"."accounts"', 'appdb', false],
      ['"skim_trg" ON "public"."accounts"', 'appdb', true],
    ]);

    expect(of(facts, 'user_mapping').map((i) => [i.name, i.database])).toEqual([
      ['SERVER "mal_srv"', 'appdb'],
      ['USER MAPPING FOR "mallory" SERVER "remote"', 'appdb'],
    ]);
    expect(pick(facts, 'user_mapping', 'USER MAPPING FOR "mallory" SERVER "remote"').detail).toMatch(
      /options user, password \(values not shown\); stores a password/,
    );

    expect(of(facts, 'default_acl').map((i) => [i.name, i.database])).toEqual([
      ['FOR ROLE "mallory" GRANT SELECT ON TABLES TO PUBLIC', 'appdb'],
      ['FOR ROLE "mallory" IN SCHEMA "public" GRANT USAGE ON SEQUENCES TO "henchman"', 'appdb'],
    ]);

    const grants = of(facts, 'granted_roles');
    expect(grants.map((i) => i.name)).toEqual([
      '"mallory" TO "henchman" GRANTED BY "postgres"',
      '"pg_read_all_data" TO "mallory" GRANTED BY "postgres"',
      '"team" TO "mallory" GRANTED BY "postgres"',
      '"team" TO "sleeper" GRANTED BY "mallory"',
    ]);
    expect(grants.map((i) => i.detail.split(':')[0])).toEqual([
      'acts as the role',
      'held by the role',
      'held by the role',
      'granted by the role',
    ]);
    expect(grants.every((i) => i.database === null)).toBe(true);

    const owned = of(facts, 'owned_objects');
    expect(owned.map((i) => i.database)).toEqual([null, 'appdb', 'lockeddb']);
    // PG16+ records the grantor of a membership in pg_shdepend too
    expect(owned[0]!.name).toBe(`"mallory" owns pg_subscription: 4${major >= 16 ? '; granted pg_auth_members: 1' : ''}`);
    expect(owned[1]!.name).toMatch(/^"mallory" owns .*pg_proc: 5/);
    expect(owned[2]!.name).toBe('"mallory" owns pg_class: 1');

    expect(of(facts, 'cron_job')).toEqual([]);
  });

  it('evaluates them: exposure only for what keeps running, remediation per database, scan incomplete', async () => {
    const findings = evaluate(await collect(mallory));
    const exposing = findings.filter((f) => f.exposure).map((f) => f.id);
    expect(exposing.sort()).toEqual(['persistence.replication_slot', 'persistence.subscription']);
    const ids = new Set(findings.map((f) => f.id));
    for (const id of persistenceCheck.ids.filter((i) => i !== 'persistence.cron_job')) expect(ids).toContain(id);
    const sd = findings.find((f) => f.id === 'persistence.security_definer')!;
    expect(sd.severity).toBe('high');
    expect(sd.remediation).toContain('-- in database "appdb":\nALTER ROUTINE "public"."elevate"(i integer) SECURITY INVOKER;');
    const incomplete = findings.find((f) => f.id === 'persistence.scan_incomplete')!;
    expect(incomplete.severity).toBe('medium');
    expect(incomplete.detail).toMatch(/lockeddb/);
  });

  it('leaves a bystander alone and finds only her own function for her', async () => {
    const facts = await collect(mallory, { allDatabases: true });
    expect(JSON.stringify(facts)).not.toContain('alice_sd');
    const hers = await collect(alice);
    expect(hers.items.filter((i) => i.kind !== 'owned_objects')).toEqual([
      expect.objectContaining({ kind: 'security_definer', database: 'appdb', name: '"public"."alice_sd"()' }),
    ]);
    expect(hers.databasesScanned).toEqual(['appdb']);
  });

  it('never outputs a stored password', async () => {
    for (const role of [mallory, hostile]) {
      const facts = await collect(role, { allDatabases: true });
      const text = JSON.stringify(facts) + JSON.stringify(evaluate(facts));
      for (const s of SECRETS) expect(text).not.toContain(s);
    }
  });

  it('gives the same result one database at a time and four at a time', async () => {
    for (const allDatabases of [false, true]) {
      const one = await collect(mallory, { allDatabases, concurrency: 1 });
      const four = await collect(mallory, { allDatabases, concurrency: 4 });
      expect(one.items).toEqual(four.items);
      expect(one.databasesScanned).toEqual(four.databasesScanned);
      expect(one.errors).toEqual(four.errors);
    }
    const all = await collect(mallory, { allDatabases: true, concurrency: 2 });
    expect(all.databasesScanned).toEqual(['appdb', 'otherdb', 'postgres']);
    expect(all.errors.map((e) => e.database)).toEqual(['lockeddb']);
  });

  it('works for a non-superuser operator, without reading what it may not', async () => {
    const auditor = await cl.connectAs('auditor', 'aud-pw');
    const p = resolveConnParams({ dsn: cl.url('auditor', 'aud-pw') }, {});
    const facts = await collect(mallory, {}, auditor, p);
    expect(facts.errors.map((e) => e.database)).toEqual(['lockeddb']);
    expect(of(facts, 'subscription')).toHaveLength(4);
    for (const s of of(facts, 'subscription')) expect(s.detail).toMatch(/unknown whether its connection string stores a password/);
    expect(pick(facts, 'user_mapping', 'USER MAPPING FOR "mallory" SERVER "remote"').detail).toMatch(
      /unknown whether it stores a password/,
    );
    expect(of(facts, 'security_definer')).toHaveLength(2);
    const text = JSON.stringify(facts) + JSON.stringify(evaluate(facts));
    for (const s of SECRETS) expect(text).not.toContain(s);
  });

  it('quotes hostile names so that its remediation SQL runs as printed', async () => {
    const facts = await collect(hostile);
    expect(of(facts, 'security_definer').map((i) => i.name)).toEqual(['"Sch""ema ünï"."f""n()"(a text)']);
    expect(of(facts, 'trigger_function').map((i) => [i.name, i.active])).toEqual([['"t""rg ON x" ON "Sch""ema ünï"."ta""ble ON x"', true]]);
    expect(of(facts, 'user_mapping').map((i) => i.name)).toEqual(['USER MAPPING FOR "Mal""lory ünï" SERVER "remote"']);
    expect(of(facts, 'default_acl').map((i) => i.name)).toEqual([
      'FOR ROLE "Mal""lory ünï" IN SCHEMA "Sch""ema ünï" GRANT SELECT ON TABLES TO "alice"',
    ]);
    expect(of(facts, 'granted_roles').map((i) => i.name)).toEqual(['"team" TO "Mal""lory ünï" GRANTED BY "postgres"']);

    for (const f of evaluate(facts)) if (f.id !== 'persistence.owned_objects') await runRemediation(f.remediation);
    const after = await collect(hostile);
    expect(of(after, 'security_definer')).toEqual([]);
    expect(of(after, 'trigger_function').map((i) => i.active)).toEqual([false]);
    expect(of(after, 'user_mapping')).toEqual([]);
    expect(of(after, 'default_acl')).toEqual([]);
    expect(of(after, 'granted_roles')).toEqual([]);
  });

  it("runs mallory's remediation SQL and the vectors are gone", async () => {
    for (const f of evaluate(await collect(mallory)))
      if (f.id !== 'persistence.owned_objects' && f.id !== 'persistence.scan_incomplete') await runRemediation(f.remediation);
    const after = await collect(mallory);
    expect(evaluate(after).filter((f) => f.exposure)).toEqual([]);
    expect(of(after, 'subscription').map((i) => [i.name, i.active])).toEqual([['"sub_on"', false]]);
    expect(of(after, 'replication_slot')).toEqual([]);
    expect(await cl.sql(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'mal_slot'`)).toEqual([]);
    for (const kind of ['security_definer', 'user_mapping', 'default_acl', 'granted_roles'] as const) expect(of(after, kind)).toEqual([]);
    expect(of(after, 'event_trigger').map((i) => i.active)).toEqual([false]);
    expect(of(after, 'trigger_function').map((i) => i.active)).toEqual([false, false]);
  });
});
