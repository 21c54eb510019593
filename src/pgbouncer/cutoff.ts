// Cutting a role off at a PgBouncer: what the admin console allows, and a plain account of what it
// does not.
//
// API
//   planPgbouncer(inspection, { killPool }): PgbouncerAction[]          pure
//   applyPgbouncer(dsn, actions, dryRun, env?): Promise<PgbouncerResult[]>
//   summarisePgbouncer(inspection, results): PgbouncerSummary            what could NOT be done, and why
//
// The plan, in order (harm nothing else by default):
// 1. KILL_CLIENT <id> for each of the role's clients, when the version has it (>= 1.24.0, see
//    console.ts). Otherwise one skipped action says so ("KILL_CLIENT needs PgBouncer >= 1.24.0;
//    1.18.0 here"): the clients stay connected to PgBouncer.
// 2. RECONNECT "<db>" for each database where the role's pool logs in as the role itself: PgBouncer
//    closes those server connections as they are released (idle ones at once), so the next one must
//    log in again, which PostgreSQL refuses once the role is NOLOGIN. Bystanders stay connected and
//    get fresh server connections. In session pooling a client keeps its server connection until it
//    leaves: terminating the role's backends in PostgreSQL (pgrevoke cutoff does) is what ends those.
//    Run it after NOLOGIN, before or with pg_terminate_backend.
// 3. Only with killPool: KILL "<db>" for each of the role's databases, then RESUME "<db>". KILL drops
//    every client of that database, bystanders included (the reason says how many there are now),
//    and leaves the database paused: new clients would wait forever, so RESUME follows (only when its
//    KILL succeeded, and not when the database was already paused before the cutoff).
// Databases whose pool logs in as a shared user get no RECONNECT (new logins as the shared user
// succeed whatever the role's state): without killPool or KILL_CLIENT, a skipped KILL says why, and
// the summary names the PgBouncer auth (auth_file / auth_query) that must change.
//
// Database names are always double-quoted for the console (consoleIdent in console.ts). A name the
// console cannot take (too long, NUL) gets a plain `RECONNECT` (every database; as harmless) or, for
// KILL, a skip with the reason.
import { ExitCode, PgrevokeError } from '../errors.js';
import { redact } from '../pg/redact.js';
import { formatVersion, KILL_CLIENT_SINCE, openConsole, runCommand, tryConsoleIdent, type PgbouncerConsole } from './console.js';
import type { PgbouncerClient, PgbouncerInspection } from './inspect.js';
import { authWhere, consoleUsers, plural } from './inspect.js';

export type PgbouncerActionKind = 'kill_client' | 'reconnect' | 'kill' | 'resume';

export interface PgbouncerAction {
  kind: PgbouncerActionKind;
  /** The exact console text. For a skipped KILL_CLIENT on a version without it: `KILL_CLIENT <id>`. */
  command: string;
  /** What it acts on, for reports: a client, or a database entry. */
  target: string;
  /** The PgBouncer database entry it acts on (a client's database for KILL_CLIENT); null for several. */
  database: string | null;
  /** What it does and why it is (or would be) run. */
  reason: string;
  /** Why it is not run; null when it runs. */
  skip: string | null;
  /** Runs only when this earlier command succeeded (RESUME after its own KILL). */
  after: string | null;
}

export type PgbouncerStatus = 'done' | 'skipped' | 'failed' | 'planned';

export interface PgbouncerResult {
  kind: PgbouncerActionKind;
  command: string;
  target: string;
  database: string | null;
  status: PgbouncerStatus;
  /** The skip reason, the console's refusal (with SQLSTATE), or a note; null when done plainly. */
  detail: string | null;
  /** When the command was sent (ISO); null when it was not. */
  at: string | null;
  sqlstate?: string;
  hint?: string;
}

export interface PgbouncerCutoffOptions {
  /** KILL (then RESUME) the role's pool databases: disconnects every client there, bystanders too. */
  killPool: boolean;
}

export interface PgbouncerSummary {
  /** One line per thing that could not be done, and why; also what still holds the role open. */
  notDone: string[];
  /** The role can still reach PostgreSQL through this PgBouncer (shared user, admin access, failures). */
  exposed: boolean;
  /** The lines of notDone that are why it is exposed. */
  exposure: string[];
}

const clientTarget = (c: PgbouncerClient) =>
  `client ${c.user}@${c.addr ?? '?'}${c.port !== null ? `:${c.port}` : ''} → ${c.database}${c.console ? ' (admin console)' : ''}`;
const unaddressable = (d: string) => `the console cannot address database ${JSON.stringify(d)} by name (over 63 bytes quoted, or a NUL)`;

/** The role's pool databases, sorted, by what the plan does with each. */
interface PoolDatabases {
  /** Some pool logs in as the role itself: RECONNECT makes it log in again. */
  own: string[];
  /** Every pool logs in as a shared user. */
  shared: string[];
  /** The role has clients there: KILL's candidates. */
  withClients: string[];
  /** KILLed (--pgbouncer-kill-pool, and a name the console can take): nothing else is needed there. */
  killed: Set<string>;
}

function poolDatabases(i: PgbouncerInspection, opts: PgbouncerCutoffOptions): PoolDatabases {
  // pools PgBouncer keeps after their last client and server left need nothing
  const live = i.pools.filter((p) => p.roleClients > 0 || p.roleServers > 0);
  const dbNames = [...new Set(live.map((p) => p.database))].sort();
  const own = dbNames.filter((d) => live.some((p) => p.database === d && !p.sharedUser));
  // KILL only where the role has clients: idle server connections alone are RECONNECT's job
  const withClients = dbNames.filter((d) => live.some((p) => p.database === d && p.roleClients > 0));
  return {
    own,
    shared: dbNames.filter((d) => !own.includes(d)),
    withClients,
    killed: new Set(opts.killPool ? withClients.filter((d) => tryConsoleIdent(d) !== null) : []),
  };
}

/** 1. The role's clients, one KILL_CLIENT each; or, before 1.24.0, one skipped line that says so. */
function planKillClients(i: PgbouncerInspection, killed: Set<string>): PgbouncerAction[] {
  const clients = i.clients.filter((c) => c.console || !killed.has(c.database));
  if (!i.killClient) {
    if (!clients.length) return [];
    return [
      {
        kind: 'kill_client',
        command: 'KILL_CLIENT <id>',
        target: `${plural(clients.length, 'client')} of the role`,
        database: null,
        reason: 'would disconnect only the role’s clients',
        skip: `KILL_CLIENT needs PgBouncer >= ${formatVersion(KILL_CLIENT_SINCE)}; ${formatVersion(i.version)} here`,
        after: null,
      },
    ];
  }
  return clients.map((c): PgbouncerAction => {
    const ok = c.id !== null && /^\d+$/.test(c.id);
    return {
      kind: 'kill_client',
      command: ok ? `KILL_CLIENT ${c.id}` : 'KILL_CLIENT <id>',
      target: clientTarget(c),
      database: c.database,
      reason: 'disconnects this client of the role only (and its server connection)',
      skip: ok ? null : `SHOW CLIENTS gave no usable id for this client (${c.id ?? 'none'})`,
      after: null,
    };
  });
}

/** 2. RECONNECT each database whose pool logs in as the role; one plain RECONNECT covers the unnameable ones. */
function planReconnects(i: PgbouncerInspection, dbs: PoolDatabases): PgbouncerAction[] {
  const actions: PgbouncerAction[] = [];
  let reconnectAll = false;
  for (const d of dbs.own) {
    if (dbs.killed.has(d)) continue;
    const name = tryConsoleIdent(d);
    if (name === null) {
      if (reconnectAll) continue;
      reconnectAll = true;
      actions.push({
        kind: 'reconnect',
        command: 'RECONNECT',
        target: 'every database',
        database: null,
        reason:
          `${unaddressable(d)}, so RECONNECT all: ` +
          'server connections are closed as they are released and log in again; no client is disconnected',
        skip: null,
        after: null,
      });
      continue;
    }
    const bystanders = i.databases.find((x) => x.name === d)?.bystanderClients;
    actions.push({
      kind: 'reconnect',
      command: `RECONNECT ${name}`,
      target: `database ${d}`,
      database: d,
      reason:
        'closes its server connections as they are released (idle ones now), so the role’s next one must log in again, which PostgreSQL refuses once the role is NOLOGIN; ' +
        `no client is disconnected${bystanders ? ` (bystanders there, ${bystanders} now, just get fresh server connections)` : ''}`,
      skip: null,
      after: null,
    });
  }
  return actions;
}

/** 3a. --pgbouncer-kill-pool: KILL the database, then RESUME it (KILL leaves it paused). */
function planKillPool(i: PgbouncerInspection, d: string, shared: boolean): PgbouncerAction[] {
  const name = tryConsoleIdent(d);
  const target = `database ${d}`;
  if (name === null)
    return [
      {
        kind: 'kill',
        command: 'KILL <db>',
        target,
        database: d,
        reason: 'would drop every client of the database',
        skip: unaddressable(d),
        after: null,
      },
    ];
  const db = i.databases.find((x) => x.name === d);
  const sharedUser = i.pools.find((p) => p.database === d && p.sharedUser)?.sharedUser ?? null;
  return [
    {
      kind: 'kill',
      command: `KILL ${name}`,
      target,
      database: d,
      reason:
        `--pgbouncer-kill-pool: drops every client of ${d} and its server connections — the role’s ${plural(db?.roleClients ?? 0, 'client')} and ${plural(db?.bystanderClients ?? 0, 'other client')} (bystanders) — ` +
        'and pauses the database' +
        (shared ? `; its pool logs in as shared user ${sharedUser}, so the role can come back until PgBouncer’s auth refuses it` : ''),
      skip: null,
      after: null,
    },
    {
      kind: 'resume',
      command: `RESUME ${name}`,
      target,
      database: d,
      reason: 'KILL leaves the database paused: new clients, bystanders included, would wait until RESUME',
      skip: db?.paused ? `${d} was already paused before the cutoff: left paused` : null,
      after: `KILL ${name}`,
    },
  ];
}

/** 3b. Without --pgbouncer-kill-pool or KILL_CLIENT, a shared-user database's clients can only be KILLed: say so, skipped. */
function planSharedKillSkip(i: PgbouncerInspection, d: string): PgbouncerAction {
  const name = tryConsoleIdent(d);
  const bystanders = i.databases.find((x) => x.name === d)?.bystanderClients ?? 0;
  const sharedUser = i.pools.find((p) => p.database === d && p.sharedUser)?.sharedUser ?? null;
  return {
    kind: 'kill',
    command: name ? `KILL ${name}` : 'KILL <db>',
    target: `database ${d}`,
    database: d,
    reason: `the only console command that disconnects the role’s clients of ${d} on PgBouncer ${formatVersion(i.version)}`,
    skip: `--pgbouncer-kill-pool not given: KILL drops every client of ${d}, bystanders included (${bystanders} now); its pool logs in as shared user ${sharedUser}, so RECONNECT and NOLOGIN do not cut the role there`,
    after: null,
  };
}

export function planPgbouncer(i: PgbouncerInspection, opts: PgbouncerCutoffOptions): PgbouncerAction[] {
  const dbs = poolDatabases(i, opts);
  const kills = dbs.withClients.flatMap((d) => {
    const shared = dbs.shared.includes(d);
    if (opts.killPool) return planKillPool(i, d, shared);
    return shared && !i.killClient ? [planSharedKillSkip(i, d)] : [];
  });
  return [...planKillClients(i, dbs.killed), ...planReconnects(i, dbs), ...kills];
}

function resultOf(
  a: PgbouncerAction,
  status: PgbouncerStatus,
  detail: string | null,
  opts: { err?: PgrevokeError; at?: string } = {},
): PgbouncerResult {
  const err = opts.err;
  return {
    kind: a.kind,
    command: a.command,
    target: a.target,
    database: a.database,
    status,
    detail: detail === null ? null : redact(detail),
    at: opts.at ?? null,
    ...(err?.sqlstate ? { sqlstate: err.sqlstate } : {}),
    ...(err?.hint ? { hint: err.hint } : {}),
  };
}

export async function applyPgbouncer(
  dsn: string,
  actions: PgbouncerAction[],
  dryRun: boolean,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PgbouncerResult[]> {
  if (dryRun) return actions.map((a) => (a.skip ? resultOf(a, 'skipped', a.skip) : resultOf(a, 'planned', null)));
  const runnable = actions.filter((a) => !a.skip);
  let con: PgbouncerConsole | null = null;
  let openError: PgrevokeError | null = null;
  if (runnable.length) {
    try {
      con = await openConsole(dsn, env);
    } catch (err) {
      openError =
        err instanceof PgrevokeError
          ? err
          : new PgrevokeError(redact(String((err as Error).message ?? err)), { exitCode: ExitCode.PARTIAL });
    }
  }
  const done = new Set<string>();
  const results: PgbouncerResult[] = [];
  try {
    for (const a of actions) {
      if (a.skip) {
        results.push(resultOf(a, 'skipped', a.skip));
        continue;
      }
      if (a.after && !done.has(a.after)) {
        results.push(resultOf(a, 'skipped', `not run: ${a.after} did not succeed`));
        continue;
      }
      if (!con) {
        results.push(
          resultOf(a, 'failed', `could not open the console: ${openError?.message ?? 'unknown error'}`, { err: openError ?? undefined }),
        );
        continue;
      }
      const at = new Date().toISOString();
      try {
        await runCommand(con, a.command);
        done.add(a.command);
        results.push(resultOf(a, 'done', null, { at }));
      } catch (err) {
        const e = err as PgrevokeError;
        // the client left between SHOW CLIENTS and KILL_CLIENT: what was asked holds
        if (a.kind === 'kill_client' && /client not found/i.test(e.message)) {
          done.add(a.command);
          results.push(resultOf(a, 'done', 'the client had already disconnected', { at }));
        } else {
          results.push(resultOf(a, 'failed', e.message, { err: e, at }));
        }
      }
    }
  } finally {
    await con?.close();
  }
  return results;
}

export function summarisePgbouncer(i: PgbouncerInspection, results: PgbouncerResult[]): PgbouncerSummary {
  const notDone: string[] = [];
  const exposure: string[] = [];
  let exposed = false;
  const expose = (line: string) => {
    exposed = true;
    exposure.push(line);
    notDone.push(line);
  };
  const ok = (r: PgbouncerResult) => r.status === 'done' || r.status === 'planned';
  for (const r of results) {
    if (r.status === 'failed') {
      expose(`${r.command} (${r.target}) failed: ${r.detail ?? 'unknown error'}${r.hint ? ` (${r.hint})` : ''}`);
    } else if (r.status === 'skipped') {
      notDone.push(`${r.command} (${r.target}) not run: ${r.detail}`);
    }
  }

  const killedDbs = new Set(results.filter((r) => r.kind === 'kill' && ok(r)).map((r) => r.database));
  const cutClients = new Set(results.filter((r) => r.kind === 'kill_client' && ok(r)).map((r) => r.target));
  const remaining = i.clients.filter((c) => !c.console && !killedDbs.has(c.database) && !cutClients.has(clientTarget(c)));
  const sharedPools = i.pools.filter((p) => p.sharedUser);
  const remainingOwn = remaining.filter((c) => !sharedPools.some((p) => p.database === c.database));
  if (remainingOwn.length) {
    const dbs = [...new Set(remainingOwn.map((c) => c.database))].sort();
    const pids = i.servers
      .filter((s) => dbs.includes(s.database) && !sharedPools.some((p) => p.database === s.database) && s.remotePid !== null)
      .map((s) => s.remotePid);
    const wait =
      i.queryWaitTimeout === null
        ? ''
        : i.queryWaitTimeout > 0
          ? `; a query then waits for a server login and fails after query_wait_timeout (${i.queryWaitTimeout} s here), which also disconnects the client`
          : '; a query then waits for a server login forever (query_wait_timeout = 0 here)';
    notDone.push(
      `${plural(remainingOwn.length, 'client')} of the role stay connected to ${i.node} (${dbs.join(', ')}): ` +
        `they cannot run queries once PostgreSQL refuses the role's new server logins (NOLOGIN) and its server connections` +
        `${pids.length ? ` (pids ${pids.join(', ')})` : ''} are terminated${wait}`,
    );
  }
  for (const p of sharedPools) {
    const left = remaining.filter((c) => c.database === p.database).length;
    expose(
      `database ${p.database}: the pool logs in to PostgreSQL as shared user ${p.sharedUser}, so NOLOGIN and terminating backends do not cut the role there` +
        `${left ? ` (${plural(left, 'client')} of the role still connected)` : ''}; ` +
        `PgBouncer's own auth must refuse the role (${authWhere(i.auth)}): remove it from auth_file / make auth_query refuse it, then RELOAD`,
    );
  }
  const { admin, stats } = consoleUsers(i);
  if (admin.length) {
    expose(`${admin.join(', ')} ${admin.length === 1 ? 'is' : 'are'} in admin_users of ${i.node}: remove from pgbouncer.ini and RELOAD`);
  }
  if (stats.length) notDone.push(`${stats.join(', ')} may still read the console of ${i.node} (stats_users): remove and RELOAD`);
  return { notDone, exposed, exposure };
}
