// The lockout tests' shared pieces: the policy they start from, the engine's node over a test
// cluster and an engine on it, a login from a chosen 127.0.0.0/8 source address, and a lockout as
// the state file holds it; for the red-team tests, a hardened server logging csvlog and a clean start per test.
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { LockoutEngine, type EngineConfig } from '../../src/lockout/engine.js';
import type { Lockout, LockoutClient, LockoutNode, LockoutPolicy } from '../../src/lockout/types.js';
import { connect } from '../../src/pg/connect.js';
import { nodeLabel, resolveConnParams } from '../../src/pg/conninfo.js';
import { SqlLogSource } from '../../src/serverlog/sql-source.js';
import type { AuthFailure } from '../../src/serverlog/types.js';
import { loginOutcome, startCluster, type TestCluster } from './cluster.js';
import { boundSocket } from './serverlog.js';

/** 3 failures within 10 minutes lock the (role, address) pair for 15; no ban, nothing excluded; `p` changes what it names. */
export const testPolicy = (p: Partial<LockoutPolicy> = {}): LockoutPolicy => ({
  after: 3,
  windowMs: 600_000,
  forMs: 900_000,
  by: 'address',
  banAddressAfter: null,
  excludeRoles: [],
  excludeAddresses: [],
  ...p,
});

/** A superuser session on `cl` for the engine, and the node made of it (its pg_hba.conf: the cluster's own file). */
export async function lockoutNode(cl: TestCluster): Promise<{ client: pg.Client; node: LockoutNode }> {
  const params = resolveConnParams({ dsn: cl.dsn() }, {});
  const client = await connect(params);
  return { client, node: { name: nodeLabel(params), params, client: () => client as LockoutClient, hbaFile: cl.hbaFile } };
}

/** An engine over `nodes` with testPolicy(policy); `over` sets the rest (auditLog, ...). */
export function lockoutEngine(
  nodes: LockoutNode[],
  env: NodeJS.ProcessEnv,
  policy: Partial<LockoutPolicy> = {},
  over: Partial<EngineConfig> = {},
): LockoutEngine {
  return new LockoutEngine({ policy: testPolicy(policy), nodes, env, operator: { osUser: 'test', host: 'here' }, ...over });
}

/** A login from `source` (bound with localAddress), checked to come from there: 'allow', or the SQLSTATE it was refused with. */
export function loginFrom(cl: TestCluster, source: string, user: string, password: string): Promise<string> {
  return loginOutcome(cl, { user, password, stream: boundSocket(source) }, async (c) => {
    const who = (await c.query<{ a: string }>('SELECT host(inet_client_addr()) AS a')).rows[0]!.a;
    if (who !== source) throw new Error(`the login came from ${who}, not ${source}`);
  });
}

/** A lockout of alice from 127.0.0.2 as lockouts.json holds it, in force nowhere yet; `over` changes what it names. */
export const storedLockout = (over: Partial<Lockout> = {}): Lockout => ({
  id: '0123456789abcdef',
  kind: 'address',
  role: 'alice',
  address: '127.0.0.2',
  count: 5,
  since: '2026-03-01T12:00:00.000Z',
  until: '2026-03-01T12:15:00.000Z',
  nodes: ['127.0.0.1:5432'],
  reason: '5 failed logins',
  knocks: 0,
  lastKnock: null,
  applied: [],
  before: null,
  nologinSet: false,
  ended: null,
  ...over,
});

/** The red-team tests' pg_hba.conf, hardened: named roles from named places, everything else refused. */
export const HARDENED_HBA =
  [
    'local all all trust',
    'host all postgres 127.0.0.1/32 scram-sha-256',
    'host all alice 127.0.0.0/8 scram-sha-256',
    'host all all 0.0.0.0/0 reject',
  ].join('\n') + '\n';

/** A red-team server: csvlog (read over SQL), HARDENED_HBA, alice (password pw-alice), and the engine's node on it. */
export async function startRedTeam(major: number): Promise<{ cl: TestCluster; client: pg.Client; node: LockoutNode }> {
  const cl = await startCluster(major, {
    logging_collector: 'on',
    log_destination: `'csvlog'`,
    log_filename: `'postgresql-%Y-%m-%d_%H%M%S'`,
  });
  try {
    await cl.writeDataFile('pg_hba.conf', HARDENED_HBA);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'pw-alice'`);
    return { cl, ...(await lockoutNode(cl)) };
  } catch (err) {
    await cl.destroyAll();
    throw err;
  }
}

/** A red-team test's clean start: HARDENED_HBA back, a fresh state directory under `tmp`, a log source past what is logged so far. */
export async function redTeamStart(
  cl: TestCluster,
  client: pg.Client,
  tmp: string,
): Promise<{ env: { PGREVOKE_STATE_DIR: string }; source: SqlLogSource }> {
  await cl.writeDataFile('pg_hba.conf', HARDENED_HBA);
  await cl.sql('SELECT pg_reload_conf()');
  const env = { PGREVOKE_STATE_DIR: mkdtempSync(path.join(tmp, 'state-')) };
  const source = new SqlLogSource(client, { format: 'csvlog' });
  await source.poll();
  return { env, source };
}

let failurePid = 100;
/** A password failure of `user` from `address` at `atMs`, as the log readers hand it on (each its own pid). */
export const passwordFailure = (user: string, address: string, atMs: number): AuthFailure => ({
  at: new Date(atMs).toISOString(),
  user,
  database: 'postgres',
  address,
  sqlstate: '28P01',
  kind: 'password',
  message: `password authentication failed for user "${user}"`,
  hbaLine: null,
  pid: failurePid++,
});
