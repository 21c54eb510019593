// The PgBouncer admin console: open it from a DSN, read SHOW output by column name, run commands.
//
// API
//   openConsole(dsn, env?): Promise<PgbouncerConsole>      connect to the console (database "pgbouncer")
//   consoleParams(dsn, env?): ConnParams                    the parameters openConsole uses
//   pgbouncerNodeLabel(params): string                      "pgbouncer host:port" (never the password)
//   show(console, what): Promise<ConsoleRow[]>              SHOW CLIENTS|SERVERS|POOLS|DATABASES|CONFIG|VERSION
//   showVersion(console): Promise<PgbouncerVersion>
//   runCommand(console, text): Promise<string>              one console command; PgrevokeError on refusal
//   parseVersion(text), versionAtLeast(v, min), formatVersion(v)
//   supportsKillClient(v), KILL_CLIENT_SINCE
//   consoleIdent(name): string                              a database name as a console argument
//
// Facts this relies on (read in PgBouncer's sources, src/admin.c, tags pgbouncer_1_18_0 .. pgbouncer_1_25_2):
// - The console speaks only the simple query protocol ('Q' messages; Parse/Bind/Execute are refused).
//   node-postgres uses the simple protocol for client.query(text) without parameters: every call here
//   passes text only.
// - A command is matched by the regex  ^ws WORD (ws WORD)? ws (; ws)?$  where
//   WORD = "([^"]+|"")*" | [0-9a-z_]+  (case-insensitive). A quoted argument is unquoted ("" -> ")
//   and copied into a 64-byte buffer (`char arg[64]`): an argument of 64 bytes or more, quotes
//   included, is refused with "bad arguments". Names with other characters than [0-9a-z_] (a hyphen,
//   a dot, a space) only pass quoted. consoleIdent() therefore always double-quotes, doubles embedded
//   quotes, refuses NUL and names whose quoted form exceeds 63 bytes (UTF-8); callers decide what to
//   do then (the plan falls back or skips, and says why).
// - SHOW columns differ between versions (1.23 added `replication`, 1.24 `prepared_statements` and
//   `id`; 1.18 identifies sockets by `ptr`/`link` only): rows are returned keyed by column name and
//   callers must never read by position. Every value is a string or null (int columns arrive as
//   numbers from node-postgres and are turned back into strings here).
// - KILL_CLIENT <id> appeared in PgBouncer 1.24.0 (NEWS.md, "PgBouncer 1.24.0 ... Add KILL_CLIENT
//   command to the admin console" (#1147); src/admin.c has no KILL_CLIENT at tag pgbouncer_1_23_1 and
//   has admin_cmd_kill_client at pgbouncer_1_24_0), taking the `id` column of SHOW CLIENTS (also new
//   in 1.24.0). Before 1.25.2 it skipped the admin_users check (CVE-2026-6667); pgrevoke always uses
//   an admin connection, so that only matters to the operator's own access control.
// - The console database is always named "pgbouncer" (reserved): the DSN's dbname is ignored.
import { ExitCode, PgrevokeError } from '../errors.js';
import { connect, type Client } from '../pg/connect.js';
import { resolveConnParams, type ConnParams } from '../pg/conninfo.js';
import { redact } from '../pg/redact.js';

export const ADMIN_DATABASE = 'pgbouncer';

export interface PgbouncerVersion {
  /** As SHOW VERSION printed it, e.g. "PgBouncer 1.18.0". */
  text: string;
  major: number;
  minor: number;
  patch: number;
}

export type VersionTriple = readonly [number, number, number];

/** First release with KILL_CLIENT (NEWS.md 1.24.0, #1147; see the header for the source check). */
export const KILL_CLIENT_SINCE: VersionTriple = [1, 24, 0];

export type ShowWhat = 'CLIENTS' | 'SERVERS' | 'POOLS' | 'DATABASES' | 'CONFIG' | 'VERSION';

/** One SHOW row, keyed by column name. */
export type ConsoleRow = Record<string, string | null>;

export interface PgbouncerConsole {
  client: Client;
  params: ConnParams;
  /** "pgbouncer host:port" */
  node: string;
  close(): Promise<void>;
}

export function parseVersion(text: string): PgbouncerVersion {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) throw new PgrevokeError(`cannot read the PgBouncer version from "${text}"`, { hint: 'is this a PgBouncer admin console?' });
  return { text: text.trim(), major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

export function versionAtLeast(v: Pick<PgbouncerVersion, 'major' | 'minor' | 'patch'>, min: VersionTriple): boolean {
  const have = [v.major, v.minor, v.patch];
  for (let i = 0; i < 3; i++) {
    if (have[i]! !== min[i]!) return have[i]! > min[i]!;
  }
  return true;
}

export function formatVersion(v: Pick<PgbouncerVersion, 'major' | 'minor' | 'patch'> | VersionTriple): string {
  const [major, minor, patch] = 'major' in v ? [v.major, v.minor, v.patch] : v;
  return `${major}.${minor}.${patch}`;
}

export function supportsKillClient(v: PgbouncerVersion): boolean {
  return versionAtLeast(v, KILL_CLIENT_SINCE);
}

/** The console copies an argument into `char arg[64]`: the quoted token must stay under 64 bytes. */
export const CONSOLE_ARG_MAX_BYTES = 63;

/**
 * A database name as a console argument: always double-quoted, embedded quotes doubled (the
 * console's WORD syntax). Throws for a NUL byte or a quoted form longer than the console accepts.
 */
export function consoleIdent(name: string): string {
  if (name === '') throw new PgrevokeError('empty database name', { hint: 'the PgBouncer console needs a database name here' });
  if (name.includes('\0'))
    throw new PgrevokeError('database name contains a NUL byte', { hint: 'the PgBouncer console cannot address it' });
  const quoted = `"${name.replace(/"/g, '""')}"`;
  if (Buffer.byteLength(quoted, 'utf8') > CONSOLE_ARG_MAX_BYTES)
    throw new PgrevokeError(`database name "${name}" is too long for the PgBouncer console`, {
      hint: `the console accepts arguments of at most ${CONSOLE_ARG_MAX_BYTES} bytes, quotes included`,
    });
  return quoted;
}

/** consoleIdent, or null when the name cannot be addressed on the console. */
export function tryConsoleIdent(name: string): string | null {
  try {
    return consoleIdent(name);
  } catch {
    return null;
  }
}

/** Connection parameters for the console: the DSN (then the environment, as psql), database "pgbouncer". */
export function consoleParams(dsn: string, env: NodeJS.ProcessEnv = process.env): ConnParams {
  // PGDATABASE names a PostgreSQL database, never the console; the console's database name is fixed
  const p = resolveConnParams({ dsn }, { ...env, PGDATABASE: undefined, DATABASE_URL: undefined });
  return { ...p, database: ADMIN_DATABASE };
}

export function pgbouncerNodeLabel(p: Pick<ConnParams, 'host' | 'port'>): string {
  return `pgbouncer ${p.host}:${p.port}`;
}

function consoleHint(message: string): string | undefined {
  if (/not allowed/i.test(message)) return 'the console admits only users listed in admin_users or stats_users (pgbouncer.ini)';
  if (/admin access needed/i.test(message)) return 'this command needs a console user listed in admin_users; stats_users may only SHOW';
  if (/invalid command/i.test(message)) return 'this PgBouncer version does not know the command (SHOW HELP lists what it has)';
  if (/no such database/i.test(message)) return 'the database entry is gone from PgBouncer (RELOAD, or clients came and went)';
  if (/already suspended\/paused/i.test(message)) return 'PgBouncer is paused or suspended; RESUME it first';
  if (/password authentication failed|SASL authentication failed/i.test(message))
    return 'check the console password (in the DSN, PGPASSWORD or ~/.pgpass) against PgBouncer auth_file';
  return undefined;
}

export async function openConsole(dsn: string, env: NodeJS.ProcessEnv = process.env): Promise<PgbouncerConsole> {
  const params = consoleParams(dsn, env);
  const node = pgbouncerNodeLabel(params);
  let client: Client;
  try {
    client = await connect(params, params.database, { console: true });
  } catch (err) {
    const e = err as PgrevokeError;
    const message = redact(e.message ?? String(err));
    throw new PgrevokeError(`${node}: ${message}`, {
      sqlstate: e.sqlstate,
      hint: consoleHint(message) ?? e.hint,
      exitCode: ExitCode.USAGE,
      cause: err,
    });
  }
  return {
    client,
    params,
    node,
    close: async () => {
      await client.end().catch(() => undefined);
    },
  };
}

function toText(v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

/** Run one console command (simple protocol, no parameters); refusals become PgrevokeErrors. */
async function consoleQuery(con: PgbouncerConsole, text: string, exitCode: ExitCode = ExitCode.USAGE) {
  try {
    return await con.client.query(text);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    const message = redact(e.message ?? String(err));
    throw new PgrevokeError(`${con.node}: ${text}: ${message}`, {
      sqlstate: e.code && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined,
      hint: consoleHint(message),
      exitCode,
      cause: err,
    });
  }
}

export async function show(con: PgbouncerConsole, what: ShowWhat): Promise<ConsoleRow[]> {
  const res = await consoleQuery(con, `SHOW ${what}`);
  const names = res.fields.map((f) => f.name);
  return (res.rows as Record<string, unknown>[]).map((r) => {
    const row: ConsoleRow = {};
    for (const n of names) row[n] = toText(r[n]);
    return row;
  });
}

export async function showVersion(con: PgbouncerConsole): Promise<PgbouncerVersion> {
  const rows = await show(con, 'VERSION');
  const text = rows[0]?.version;
  if (!text) throw new PgrevokeError(`${con.node}: SHOW VERSION returned nothing`, { hint: 'is this a PgBouncer admin console?' });
  return parseVersion(text);
}

/** Run a console command such as RECONNECT "db"; returns the command tag. */
export async function runCommand(con: PgbouncerConsole, text: string): Promise<string> {
  const res = await consoleQuery(con, text, ExitCode.PARTIAL);
  return res.command ?? text.split(/\s+/)[0]!;
}
