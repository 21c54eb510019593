// What a role has open through a PgBouncer: its pooled clients, the server connections behind them,
// the pools they use, and whether those pools log in to PostgreSQL as a shared user.
//
// API
//   inspectPgbouncer(dsn, roles, env?): Promise<PgbouncerInspection>   read-only: SHOW only
//   collectSnapshot(console): Promise<PgbouncerSnapshot>               the raw SHOW rows
//   analysePgbouncer(node, roles, snapshot): PgbouncerInspection       pure: everything below
//
// Finding ids (severity, exposure):
//   pgbouncer.clients               critical, exposed   the role has clients connected to PgBouncer
//   pgbouncer.servers               high, exposed       server connections logged in as the role
//   pgbouncer.shared_user           critical, exposed   the role's pool logs in as another (shared) user
//   pgbouncer.shared_user_possible  medium              databases with a forced user the role could use
//   pgbouncer.console_access        critical/medium     the role is in admin_users (exposed) / stats_users
//   pgbouncer.no_kill_client        info                this version cannot disconnect single clients
//
// How the pieces are matched (columns always read by name, see console.ts):
// - the role's clients: SHOW CLIENTS rows whose `user` is one of `roles` (exact, case-sensitive);
//   clients of the admin console (database "pgbouncer") are kept apart (`console: true`).
// - a client's pool: (database, force_user of its SHOW DATABASES entry) when a user is forced,
//   else (database, user of the server it is linked to) when that differs, else (database, user).
//   `sharedUser` is the pool's user when it is not the client's own.
// - servers: SHOW SERVERS rows linked to one of the role's clients (client.link = server.ptr or
//   server.link = client.ptr), plus every server whose `user` is one of `roles` (idle ones included:
//   PgBouncer hands them to the next client it admits as the role, without a new PostgreSQL login).
import type { Finding } from '../checks/types.js';
import { ADMIN_DATABASE, formatVersion, KILL_CLIENT_SINCE, openConsole, parseVersion, show, supportsKillClient } from './console.js';
import type { ConsoleRow, PgbouncerConsole, PgbouncerVersion } from './console.js';

/** What SHOW CLIENTS and SHOW SERVERS rows have in common. */
interface PgbouncerSocket {
  database: string;
  state: string | null;
  addr: string | null;
  port: number | null;
  connectTime: string | null;
  requestTime: string | null;
  /** The `id` column (PgBouncer >= 1.24), which KILL_CLIENT takes; null before. */
  id: string | null;
  /** Socket address as `ptr`, and the linked peer's `ptr` as `link` (all versions). */
  ptr: string | null;
  link: string | null;
}

export interface PgbouncerClient extends PgbouncerSocket {
  user: string;
  applicationName: string | null;
  tls: string | null;
  /** A session on the admin console (database "pgbouncer"), not a pooled client. */
  console: boolean;
}

export interface PgbouncerServer extends PgbouncerSocket {
  /** The user PgBouncer logged in to PostgreSQL as. */
  user: string;
  /** The PostgreSQL backend pid behind it (`remote_pid`), when PgBouncer knows it. */
  remotePid: number | null;
  /** The role's client this server serves right now (its `ptr`), or null when idle / someone else's. */
  clientPtr: string | null;
}

export interface PgbouncerPool {
  database: string;
  /** The user the pool logs in to PostgreSQL as. */
  user: string;
  /** Set when that user is not the role: PostgreSQL never sees the role on these connections. */
  sharedUser: string | null;
  /** How the shared user was recognised. */
  sharedVia: 'force_user' | 'server_user' | null;
  poolMode: string | null;
  roleClients: number;
  roleServers: number;
}

export interface PgbouncerDatabase {
  name: string;
  forceUser: string | null;
  paused: boolean;
  disabled: boolean;
  /** Clients of this database entry right now, all users. */
  clients: number;
  roleClients: number;
  /** Clients of other users: what KILL on this database would hit as well. */
  bystanderClients: number;
}

export interface PgbouncerAuth {
  authType: string | null;
  authFile: string | null;
  authQuery: string | null;
  authUser: string | null;
  authHbaFile: string | null;
  adminUsers: string[];
  statsUsers: string[];
}

export interface PgbouncerInspection {
  /** "pgbouncer host:port" */
  node: string;
  version: PgbouncerVersion;
  /** KILL_CLIENT exists in this version. */
  killClient: boolean;
  roles: string[];
  clients: PgbouncerClient[];
  servers: PgbouncerServer[];
  pools: PgbouncerPool[];
  /** The database entries the role's pools use, plus forced-user entries it could use. */
  databases: PgbouncerDatabase[];
  auth: PgbouncerAuth;
  /** query_wait_timeout in seconds (0 = wait forever): how long a query waits for a server login PostgreSQL refuses. */
  queryWaitTimeout: number | null;
  findings: Finding[];
}

export interface PgbouncerSnapshot {
  version: string;
  clients: ConsoleRow[];
  servers: ConsoleRow[];
  pools: ConsoleRow[];
  databases: ConsoleRow[];
  config: ConsoleRow[];
}

const str = (v: string | null | undefined): string | null => (v === undefined || v === null || v === '' ? null : v);
const num = (v: string | null | undefined): number | null => {
  if (v === undefined || v === null || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};
const flag = (v: string | null | undefined): boolean => v !== undefined && v !== null && v !== '' && v !== '0';

function toClient(r: ConsoleRow): PgbouncerClient {
  const database = r.database ?? '';
  return {
    user: r.user ?? '',
    database,
    state: str(r.state),
    addr: str(r.addr),
    port: num(r.port),
    connectTime: str(r.connect_time),
    requestTime: str(r.request_time),
    applicationName: str(r.application_name),
    tls: str(r.tls),
    id: str(r.id),
    ptr: str(r.ptr),
    link: str(r.link),
    console: database === ADMIN_DATABASE,
  };
}

function toServer(r: ConsoleRow, clientPtr: string | null): PgbouncerServer {
  const pid = num(r.remote_pid);
  return {
    user: r.user ?? '',
    database: r.database ?? '',
    state: str(r.state),
    addr: str(r.addr),
    port: num(r.port),
    connectTime: str(r.connect_time),
    requestTime: str(r.request_time),
    id: str(r.id),
    ptr: str(r.ptr),
    link: str(r.link),
    remotePid: pid === 0 ? null : pid,
    clientPtr,
  };
}

/** admin_users / stats_users: comma-separated names. */
function userList(v: string | null | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
function listSome(items: string[], max = 5): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}
const clientLabel = (c: PgbouncerClient) =>
  `${c.user}@${c.addr ?? '?'}${c.port !== null ? `:${c.port}` : ''} → ${c.database}${c.id ? ` (id ${c.id})` : ''}`;

function authOf(config: Map<string, string | null>): PgbouncerAuth {
  return {
    authType: str(config.get('auth_type')),
    authFile: str(config.get('auth_file')),
    authQuery: str(config.get('auth_query')),
    authUser: str(config.get('auth_user')),
    authHbaFile: str(config.get('auth_hba_file')),
    adminUsers: userList(config.get('admin_users')),
    statsUsers: userList(config.get('stats_users')),
  };
}

/** The servers linked to one of the role's clients (either direction), or logged in as the role. */
function roleServers(serverRows: ConsoleRow[], pooled: PgbouncerClient[], roleSet: Set<string>): PgbouncerServer[] {
  const clientByPtr = new Map(pooled.filter((c) => c.ptr).map((c) => [c.ptr!, c]));
  const servers: PgbouncerServer[] = [];
  for (const r of serverRows) {
    const viaLink = str(r.link) ? clientByPtr.get(r.link!) : undefined;
    const viaClient = pooled.find((c) => c.link !== null && c.link === str(r.ptr));
    const client = viaLink ?? viaClient;
    if (client || roleSet.has(r.user ?? '')) servers.push(toServer(r, client?.ptr ?? null));
  }
  return servers;
}

/** A client's pool user: the entry's forced user, else its linked server's user, else its own (see the header). */
function poolUserOf(
  c: PgbouncerClient,
  dbRows: Map<string, ConsoleRow>,
  serverByPtr: Map<string, ConsoleRow>,
): { user: string; sharedVia: PgbouncerPool['sharedVia'] } {
  const forced = str(dbRows.get(c.database)?.force_user);
  const linked = c.link ? serverByPtr.get(c.link) : undefined;
  const linkedUser = linked ? str(linked.user) : null;
  if (forced && forced !== c.user) return { user: forced, sharedVia: 'force_user' };
  if (linkedUser && linkedUser !== c.user) return { user: linkedUser, sharedVia: 'server_user' };
  return { user: c.user, sharedVia: null };
}

/** The role's pools: its clients' pools, SHOW POOLS rows of the role's users, with the role's servers counted in. */
function rolePools(
  snap: PgbouncerSnapshot,
  dbRows: Map<string, ConsoleRow>,
  pooled: PgbouncerClient[],
  servers: PgbouncerServer[],
  roleSet: Set<string>,
): PgbouncerPool[] {
  const serverByPtr = new Map(snap.servers.filter((r) => str(r.ptr)).map((r) => [r.ptr!, r]));
  const poolMap = new Map<string, PgbouncerPool>();
  const poolModeOf = (database: string, user: string): string | null =>
    str(snap.pools.find((p) => p.database === database && p.user === user)?.pool_mode) ?? str(dbRows.get(database)?.pool_mode);
  const pool = (database: string, user: string, sharedUser: string | null, sharedVia: PgbouncerPool['sharedVia']) => {
    const key = JSON.stringify([database, user]);
    let p = poolMap.get(key);
    if (!p) {
      p = { database, user, sharedUser, sharedVia, poolMode: poolModeOf(database, user), roleClients: 0, roleServers: 0 };
      poolMap.set(key, p);
    }
    return p;
  };
  for (const c of pooled) {
    const { user, sharedVia } = poolUserOf(c, dbRows, serverByPtr);
    pool(c.database, user, sharedVia ? user : null, sharedVia).roleClients++;
  }
  for (const r of snap.pools) {
    if (roleSet.has(r.user ?? '') && r.database !== ADMIN_DATABASE) pool(r.database ?? '', r.user!, null, null);
  }
  for (const s of servers) {
    if (s.database === ADMIN_DATABASE) continue;
    const p = poolMap.get(JSON.stringify([s.database, s.user]));
    if (p) p.roleServers++;
  }
  return [...poolMap.values()].sort((a, b) => a.database.localeCompare(b.database) || a.user.localeCompare(b.user));
}

/** The database entries the role's pools use, and forced-user entries the role could use, with their client counts. */
function databaseEntries(
  dbRows: Map<string, ConsoleRow>,
  pools: PgbouncerPool[],
  allClients: PgbouncerClient[],
  roleSet: Set<string>,
): PgbouncerDatabase[] {
  const dbNames = new Set(pools.map((p) => p.database));
  for (const [name, r] of dbRows) if (name !== ADMIN_DATABASE && str(r.force_user)) dbNames.add(name);
  return [...dbNames].sort().map((name) => {
    const r = dbRows.get(name);
    const of = allClients.filter((c) => c.database === name);
    const roleClients = of.filter((c) => roleSet.has(c.user)).length;
    return {
      name,
      forceUser: str(r?.force_user),
      paused: flag(r?.paused),
      disabled: flag(r?.disabled),
      clients: of.length,
      roleClients,
      bystanderClients: of.length - roleClients,
    };
  });
}

export function analysePgbouncer(node: string, roles: string[], snap: PgbouncerSnapshot): PgbouncerInspection {
  const version = parseVersion(snap.version);
  const roleSet = new Set(roles);
  const config = new Map(snap.config.map((r) => [r.key ?? '', r.value ?? null]));
  const dbRows = new Map(snap.databases.map((r) => [r.name ?? '', r]));
  const allClients = snap.clients.map(toClient);
  const clients = allClients.filter((c) => roleSet.has(c.user));
  const pooled = clients.filter((c) => !c.console);
  const servers = roleServers(snap.servers, pooled, roleSet);
  const pools = rolePools(snap, dbRows, pooled, servers, roleSet);
  const inspection: PgbouncerInspection = {
    node,
    version,
    killClient: supportsKillClient(version),
    roles,
    clients,
    servers,
    pools,
    databases: databaseEntries(dbRows, pools, allClients, roleSet),
    auth: authOf(config),
    queryWaitTimeout: num(config.get('query_wait_timeout')),
    findings: [],
  };
  inspection.findings = pgbouncerFindings(inspection);
  return inspection;
}

/** Where PgBouncer's own authentication of the role lives, for remediation text. */
export function authWhere(a: PgbouncerAuth): string {
  const parts: string[] = [];
  if (a.authFile) parts.push(`auth_file ${a.authFile}`);
  if (a.authUser) parts.push(`auth_query (run as auth_user ${a.authUser})`);
  if (a.authHbaFile) parts.push(`auth_hba_file ${a.authHbaFile}`);
  const type = a.authType ? `auth_type ${a.authType}` : 'its auth_type';
  return parts.length ? `${type}; ${parts.join(', ')}` : type;
}

/** The roles in admin_users, and those only in stats_users (an admin may read the console anyway). */
export function consoleUsers(i: PgbouncerInspection): { admin: string[]; stats: string[] } {
  const admin = i.roles.filter((r) => i.auth.adminUsers.includes(r));
  const stats = i.roles.filter((r) => i.auth.statsUsers.includes(r) && !admin.includes(r));
  return { admin, stats };
}

const roleTextOf = (i: PgbouncerInspection) => i.roles.map((r) => JSON.stringify(r)).join(', ');
const noKillClientText = (i: PgbouncerInspection) =>
  `PgBouncer ${formatVersion(i.version)} has no KILL_CLIENT (needs >= ${formatVersion(KILL_CLIENT_SINCE)})`;

function clientsFinding(i: PgbouncerInspection): Finding | null {
  const pooled = i.clients.filter((c) => !c.console);
  if (!pooled.length) return null;
  const ownDbs = [...new Set(i.pools.filter((p) => !p.sharedUser && (p.roleClients > 0 || p.roleServers > 0)).map((p) => p.database))];
  const reconnect = ownDbs.length ? `RECONNECT ${listSome(ownDbs)}` : 'RECONNECT the role’s databases';
  const perDb = [...new Set(pooled.map((c) => c.database))].map((d) => `${d}: ${pooled.filter((c) => c.database === d).length}`);
  return {
    id: 'pgbouncer.clients',
    severity: 'critical',
    title: `${plural(pooled.length, 'pooled client')} of ${roleTextOf(i)} connected to ${i.node}`,
    detail:
      `${listSome(pooled.map(clientLabel))} (per database: ${perDb.join(', ')}). ` +
      'NOLOGIN and pg_hba.conf changes do not disconnect clients from PgBouncer; they keep being handed server connections.',
    remediation: i.killClient
      ? `KILL_CLIENT each client id on the console, ${reconnect}, and refuse the role in PostgreSQL (NOLOGIN) and in PgBouncer's auth: pgrevoke cutoff --pgbouncer does the console part`
      : `${noKillClientText(i)}: make PostgreSQL refuse the role (NOLOGIN), ${reconnect} on the console and pg_terminate_backend its server connections; the clients stay connected to PgBouncer but cannot run queries. KILL <db> also disconnects them but drops every client of that database, bystanders included, so pgrevoke cutoff --pgbouncer runs it only with --pgbouncer-kill-pool`,
    exposure: true,
  };
}

/** Server connections logged in as the role itself (a shared user's are pgbouncer.shared_user's). */
function serversFinding(i: PgbouncerInspection): Finding | null {
  const ownServers = i.servers.filter((s) => !i.pools.some((p) => p.sharedUser && p.database === s.database && p.user === s.user));
  if (!ownServers.length) return null;
  const idle = ownServers.filter((s) => !s.clientPtr).length;
  const pids = ownServers.map((s) => s.remotePid).filter((p): p is number => p !== null);
  return {
    id: 'pgbouncer.servers',
    severity: 'high',
    title: `${plural(ownServers.length, 'server connection')} logged in to PostgreSQL as ${roleTextOf(i)} (${idle} not serving a client)`,
    detail:
      `${listSome(ownServers.map((s) => `${s.user} → ${s.database} ${s.state ?? ''}${s.remotePid ? ` pid ${s.remotePid}` : ''}`.trim()))}. ` +
      'An open server connection needs no new login: PgBouncer hands it to the next client it admits as the role, whatever NOLOGIN says.',
    remediation: `RECONNECT ${listSome([...new Set(ownServers.map((s) => s.database))])} on the console (closes them as they are released) and pg_terminate_backend ${pids.length ? `pids ${listSome(pids.map(String))}` : 'their backends'} in PostgreSQL`,
    exposure: true,
  };
}

function sharedUserFinding(i: PgbouncerInspection, p: PgbouncerPool): Finding {
  const roleText = roleTextOf(i);
  const db = i.databases.find((d) => d.name === p.database);
  const linked = i.servers.filter((s) => s.database === p.database && s.user === p.user && s.clientPtr);
  return {
    id: 'pgbouncer.shared_user',
    severity: 'critical',
    title: `the role's pool for database ${p.database} logs in to PostgreSQL as shared user ${JSON.stringify(p.sharedUser)}`,
    detail:
      `${plural(p.roleClients, 'client')} of ${roleText} in ${p.database} run as ${p.sharedUser} in PostgreSQL` +
      (p.sharedVia === 'force_user'
        ? ` (the [databases] entry forces user=${p.sharedUser})`
        : ' (their server connections log in as that user)') +
      (linked.length ? `, server pids ${listSome(linked.map((s) => String(s.remotePid ?? '?')))}` : '') +
      '. PostgreSQL never sees the role here: NOLOGIN on it and terminating backends do not cut it, and terminating the shared user’s backends hits everyone in the pool' +
      (db && db.bystanderClients ? ` (${plural(db.bystanderClients, 'other client')} there now)` : '') +
      `. PgBouncer itself admits the role (${authWhere(i.auth)}).`,
    remediation:
      `Remove ${roleText} from PgBouncer's auth (the auth_file entry, or make auth_query refuse it) and RELOAD; then disconnect its clients: ` +
      (i.killClient
        ? 'KILL_CLIENT each of them.'
        : `${noKillClientText(i)}, so only KILL ${p.database} can, which drops every client of ${p.database}.`) +
      ` If the role may know ${p.sharedUser}'s password, rotate it.`,
    exposure: true,
  };
}

/** Forced-user entries none of the role's pools uses now: the role could still come in through them. */
function sharedUserPossibleFinding(i: PgbouncerInspection, shared: PgbouncerPool[]): Finding | null {
  const forcedUnused = i.databases.filter((d) => d.forceUser && !shared.some((p) => p.database === d.name));
  if (!forcedUnused.length) return null;
  return {
    id: 'pgbouncer.shared_user_possible',
    severity: 'medium',
    title: `${plural(forcedUnused.length, 'database entry')} on ${i.node} log in as a fixed user`,
    detail:
      `${listSome(forcedUnused.map((d) => `${d.name} (user=${d.forceUser})`))}: a client PgBouncer admits there runs as that user in PostgreSQL, ` +
      'so NOLOGIN on the role does not keep it out. The console does not show whom auth_file admits.',
    remediation: `Check that PgBouncer's auth refuses ${roleTextOf(i)} (${authWhere(i.auth)}), then RELOAD`,
    exposure: false,
  };
}

function consoleAccessFinding(i: PgbouncerInspection): Finding | null {
  const { admin, stats } = consoleUsers(i);
  if (!admin.length && !stats.length) return null;
  const consoleSessions = i.clients.filter((c) => c.console);
  return {
    id: 'pgbouncer.console_access',
    severity: admin.length ? 'critical' : 'medium',
    title: admin.length
      ? `${admin.map((r) => JSON.stringify(r)).join(', ')} ${admin.length === 1 ? 'is an admin' : 'are admins'} of ${i.node}`
      : `${stats.map((r) => JSON.stringify(r)).join(', ')} may read ${i.node}'s console (stats_users)`,
    detail:
      (admin.length ? 'admin_users may PAUSE, KILL, RECONNECT, RESUME, SET and SHUTDOWN the pooler. ' : '') +
      (stats.length ? 'stats_users may SHOW every client, server and setting. ' : '') +
      (consoleSessions.length ? `Open console sessions: ${listSome(consoleSessions.map(clientLabel))}.` : 'No console session open now.'),
    remediation: `Remove the role from admin_users / stats_users in pgbouncer.ini and RELOAD${consoleSessions.length && !i.killClient ? '; its open console sessions end only with a PgBouncer restart or KILL_CLIENT (>= 1.24.0)' : ''}`,
    exposure: admin.length > 0,
  };
}

function noKillClientFinding(i: PgbouncerInspection): Finding | null {
  if (i.killClient || !i.clients.some((c) => !c.console)) return null;
  const since = formatVersion(KILL_CLIENT_SINCE);
  return {
    id: 'pgbouncer.no_kill_client',
    severity: 'info',
    title: `PgBouncer ${formatVersion(i.version)} cannot disconnect single clients`,
    detail: `KILL_CLIENT needs PgBouncer >= ${since}; ${i.version.text} here. The console can only RECONNECT or KILL a whole database.`,
    remediation: `Upgrade PgBouncer to ${since} or later for per-client cutoff`,
    exposure: false,
  };
}

export function pgbouncerFindings(i: PgbouncerInspection): Finding[] {
  const shared = i.pools.filter((p) => p.sharedUser);
  return [
    clientsFinding(i),
    serversFinding(i),
    ...shared.map((p) => sharedUserFinding(i, p)),
    sharedUserPossibleFinding(i, shared),
    consoleAccessFinding(i),
    noKillClientFinding(i),
  ].filter((f): f is Finding => f !== null);
}

export async function collectSnapshot(con: PgbouncerConsole): Promise<PgbouncerSnapshot> {
  const [version] = await show(con, 'VERSION');
  return {
    version: version?.version ?? '',
    clients: await show(con, 'CLIENTS'),
    servers: await show(con, 'SERVERS'),
    pools: await show(con, 'POOLS'),
    databases: await show(con, 'DATABASES'),
    config: await show(con, 'CONFIG'),
  };
}

export async function inspectPgbouncer(dsn: string, roles: string[], env: NodeJS.ProcessEnv = process.env): Promise<PgbouncerInspection> {
  const con = await openConsole(dsn, env);
  try {
    return analysePgbouncer(con.node, roles, await collectSnapshot(con));
  } finally {
    await con.close();
  }
}
