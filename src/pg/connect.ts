// Opening connections: psql-compatible parameters in, an operator-readable error out.
import { readFileSync } from 'node:fs';
import pg from './driver.js';
import pgpass from 'pgpass';
import { ExitCode, PgrevokeError } from '../errors.js';
import { DEFAULT_SOCKET_DIRS, describeConn, socketFile, type ConnParams } from './conninfo.js';
import { askPassword, asksFirst, NoPasswordSupplied, typedPassword } from './password-prompt.js';
import { redact } from './redact.js';

export type Client = pg.Client;

function sslConfig(p: ConnParams): pg.ClientConfig['ssl'] {
  switch (p.sslmode) {
    case undefined:
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return {
        rejectUnauthorized: true,
        ca: p.sslrootcert ? readFileSync(p.sslrootcert, 'utf8') : undefined,
        cert: p.sslcert ? readFileSync(p.sslcert, 'utf8') : undefined,
        key: p.sslkey ? readFileSync(p.sslkey, 'utf8') : undefined,
        // verify-ca checks the chain only, like libpq
        checkServerIdentity: p.sslmode === 'verify-ca' ? () => undefined : undefined,
      };
    default:
      throw new PgrevokeError(`invalid sslmode value: "${p.sslmode}"`, {
        hint: 'use disable, allow, prefer, require, verify-ca or verify-full',
      });
  }
}

function pgpassLookup(p: ConnParams): Promise<string | undefined> {
  return new Promise((resolve) => {
    pgpass({ host: p.host.startsWith('/') ? 'localhost' : p.host, port: p.port, database: p.database, user: p.user }, resolve);
  });
}

/**
 * What every pgrevoke session starts with, whatever the database or role settings say: a database
 * owner (or a superuser target) can `ALTER DATABASE ... SET search_path` to put its own
 * pg_stat_activity ahead of the catalog's, make transactions read-only or time out at once, or set
 * the session's role to its own.
 * Startup parameters take precedence over those settings; the operator's own PGOPTIONS come after.
 */
export const SESSION_OPTIONS = [
  'search_path=pg_catalog,pg_temp',
  'default_transaction_read_only=off',
  'statement_timeout=0',
  'idle_in_transaction_session_timeout=0',
  // a database owner can turn it off for every session there: a backslash in '...' would then escape
  'standard_conforming_strings=on',
  // ALTER DATABASE ... SET role = 'target' would make every statement here run as the attacker
  'role=none',
  // German or SQL: the driver parses such a timestamp as null, and the report's text ones stop being ISO 8601
  'DateStyle=ISO',
  // on, any failed statement (a lock timeout) would end the session
  'exit_on_error=off',
]
  .map((o) => `-c ${o}`)
  .join(' ');

export function clientConfig(p: ConnParams, database = p.database): pg.ClientConfig {
  // p.password is not registered with redact(): it is kept out of output at its sources instead
  return {
    host: p.host,
    port: p.port,
    user: p.user,
    database,
    // called only when the server asks: a password typed earlier in the run, else ~/.pgpass, else
    // the attempt stops here and connect() may ask on the terminal
    password:
      p.password ??
      (async () => {
        const pw = (await typedPassword(p)) ?? (await pgpassLookup(p));
        if (pw === undefined) throw new NoPasswordSupplied();
        return pw;
      }),
    ssl: sslConfig(p),
    connectionTimeoutMillis: p.connectTimeout > 0 ? p.connectTimeout * 1000 : undefined,
    application_name: p.applicationName,
    options: p.options,
  };
}

/**
 * What to do when the server refuses a login with 53300, from the server's own wording: which
 * reserved slots are left says whether a superuser or (PostgreSQL 16+) a member of
 * pg_use_reserved_connections still gets in.
 */
export function fullServerHint(message: string, user: string): string {
  const who = JSON.stringify(user);
  if (/pg_use_reserved_connections/.test(message))
    return `the last slots are reserved: reserved_connections (PostgreSQL 16+) for members of pg_use_reserved_connections, superuser_reserved_connections for superusers, and ${who} is neither; connect as a superuser, or as a member of pg_use_reserved_connections (GRANT it to the operator before an incident)`;
  if (/SUPERUSER attribute/.test(message))
    return `only superusers get the last superuser_reserved_connections slots and ${who} is not one (any reserved_connections for pg_use_reserved_connections members are taken too): connect as a superuser`;
  if (/superuser connections/.test(message))
    return `only superusers get the last superuser_reserved_connections slots (this server is older than PostgreSQL 16: there is no pg_use_reserved_connections) and ${who} is not one: connect as a superuser`;
  return "every slot is taken, the reserved ones included (a superuser role can fill them too): no new login gets in; a session opened before (a running pgrevoke guard holds its own) can end the role's backends, or raise max_connections and restart";
}

/** strerror(3)'s words, as libpq prints them after "connection to server ... failed: ". */
const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'Connection refused',
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
};

function socketHint(code: string, p: ConnParams): string {
  if (code === 'EACCES') return "this OS user may not open the server's socket: run as a user it admits (sudo -u postgres pgrevoke ...)";
  const hint = 'Is the server running locally and accepting connections on that socket?';
  // no host given: say where pgrevoke looked, and how to look elsewhere
  if (!p.socketSearch) return hint;
  const looked = p.socketSearch.length
    ? `so pgrevoke looked for .s.PGSQL.${p.port} in ${p.socketSearch.join(', ')} (libpq's socket directories)`
    : `and none of libpq's socket directories (${DEFAULT_SOCKET_DIRS.join(', ')}) exists here`;
  return `${hint} No host was given, ${looked}; -h HOST connects over TCP, -h DIR to the socket in DIR, -p PORT to another server`;
}

/**
 * A server that could not be reached, in libpq's words (fe-connect.c, emitHostIdentityInfo): the
 * socket file, or the host as given, the address tried when it differs, and the port.
 */
function unreachableError(err: unknown, p: ConnParams): PgrevokeError | undefined {
  const e = err as { code?: string; address?: string };
  const text = e.code === undefined ? undefined : SOCKET_ERRORS[e.code];
  if (!text) return undefined;
  if (p.host.startsWith('/'))
    return new PgrevokeError(`connection to server on socket "${socketFile(p.host, p.port)}" failed: ${text}`, {
      sqlstate: '08001',
      hint: socketHint(e.code!, p),
      cause: err,
    });
  const address = e.address && e.address !== p.host && `[${e.address}]` !== p.host ? ` (${e.address})` : '';
  const hint =
    e.code === 'ECONNREFUSED'
      ? 'Is the server running on that host and accepting TCP/IP connections on that port?'
      : 'check the address and any firewall between you and the server';
  return new PgrevokeError(`connection to server at "${p.host}"${address}, port ${p.port} failed: ${text}`, {
    sqlstate: '08001',
    hint,
    cause: err,
  });
}

/**
 * Root connects as role "root" unless told otherwise, and a server has none unless someone made
 * it; and peer authentication admits only the OS user of the role's name. The way in is the
 * server's OS user, or a role named with -U.
 */
export function rootHint(p: Pick<ConnParams, 'user'>, message: string, uid: number | undefined = process.getuid?.()): string | undefined {
  if (uid !== 0) return undefined;
  if (p.user === 'root')
    return 'pgrevoke runs as root, so it logs in as role "root" (the OS user name, as psql does), and the server does not admit that role: run it as the server\'s OS user (sudo -u postgres pgrevoke ...), or name a role with -U (-U postgres)';
  if (/peer authentication failed/i.test(message))
    return `peer authentication admits the OS user of the role's name (pg_ident.conf aside), and this is root: run it as that user (sudo -u ${p.user} pgrevoke ...)`;
  return undefined;
}

/** Turn any connection or query failure into one readable line with SQLSTATE and hint. */
export function toOperatorError(err: unknown, p: ConnParams, doing = 'connect to', stage: { loginStarted?: boolean } = {}): PgrevokeError {
  if (err instanceof PgrevokeError) return err;
  const unreachable = unreachableError(err, p);
  if (unreachable) return unreachable;
  const e = err as { code?: string; message?: string; hint?: string; detail?: string };
  const where = describeConn(p);
  const msg = redact(e.message ?? String(err));
  const serverHint = e.hint === undefined ? undefined : redact(e.hint);
  const code = e.code;
  const net = (sqlstate: string, text: string, hint: string) =>
    new PgrevokeError(`could not ${doing} ${where}: ${text}`, { sqlstate, hint, cause: err });
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return net('08001', `could not translate host name "${p.host}" to address`, 'check the host name (PGHOST, --host or the DSN)');
    case 'ECONNRESET':
      return net('08006', 'connection reset by the server', 'the server closed the connection; check its log');
    case '28P01':
      return new PgrevokeError(`${msg} (${where})`, {
        sqlstate: code,
        hint: rootHint(p, msg) ?? 'check the password (PGPASSWORD, ~/.pgpass or the DSN)',
        cause: err,
      });
    case '28000':
      return new PgrevokeError(`${msg} (${where})`, {
        sqlstate: code,
        hint: rootHint(p, msg) ?? serverHint ?? 'pg_hba.conf or the role itself refuses this login',
        cause: err,
      });
    case '3D000':
      return new PgrevokeError(`${msg} (${where})`, {
        sqlstate: code,
        hint: 'name an existing database with --dbname or PGDATABASE',
        cause: err,
      });
    case '42501':
      return new PgrevokeError(msg, {
        sqlstate: code,
        hint: serverHint ?? 'the connected user lacks a privilege this needs; connect as a superuser',
        cause: err,
      });
    case '53300':
      return new PgrevokeError(`the server is full (max_connections reached): ${msg} (${where})`, {
        sqlstate: code,
        hint: fullServerHint(msg, p.user),
        cause: err,
      });
    default:
      break;
  }
  if (/timeout/i.test(msg) && !code && stage.loginStarted)
    return net(
      '08001',
      `the login did not finish within ${p.connectTimeout} s (the server accepted the connection, then did not answer)`,
      'logins may be blocked by a catalog lock held in an open transaction (a superuser holding LOCK TABLE pg_authid stalls every new login, superusers included): no new connection gets past it; a running pgrevoke guard, which holds its session, is the way in (or end the holder from any session opened before the lock)',
    );
  if (/timeout/i.test(msg) && !code)
    return net('08001', 'timeout expired', 'the server did not answer within the connect timeout (--connect-timeout, PGCONNECT_TIMEOUT)');
  if (/does not support SSL/i.test(msg)) return net('08001', msg, 'use sslmode=disable or prefer, or enable SSL on the server');
  // an empty password given by a caller (the operator's own empty one counts as none: conninfo.ts)
  if (/password/i.test(msg) && /must be a (non-empty )?string/i.test(msg))
    return new PgrevokeError(`could not ${doing} ${where}: the server asked for a password and the one supplied is empty`, {
      sqlstate: '28P01',
      hint: 'supply the password itself (~/.pgpass, a service file, or on a terminal when asked)',
      cause: err,
    });
  return new PgrevokeError(code && /^[0-9A-Z]{5}$/.test(code) ? msg : `could not ${doing} ${where}: ${msg}`, {
    sqlstate: code && /^[0-9A-Z]{5}$/.test(code) ? code : undefined,
    hint: serverHint,
    exitCode: ExitCode.USAGE,
    cause: err,
  });
}

/** Sockets and loopback addresses: TLS protects nothing there. */
export function isLoopback(host: string): boolean {
  return host.startsWith('/') || host === 'localhost' || /^127\./.test(host) || host === '::1' || host === '[::1]';
}

/** Settings the session starts with (startup parameters: no extra round trip). */
export interface SessionSettings {
  /** Bound every lock wait of the session (a statement's SET LOCAL may shorten it). */
  lockTimeoutMs?: number;
  /** A PgBouncer console: it refuses startup parameters it does not know, so none of SESSION_OPTIONS. */
  console?: boolean;
}

/** One login, TLS first where libpq's "prefer" would; a failed attempt's socket is closed at once. */
async function login(p: ConnParams, cfg: pg.ClientConfig, stage: { loginStarted: boolean }): Promise<Client> {
  const attempt = async (c: pg.ClientConfig) => {
    const client = new pg.Client(c);
    // a dropped connection must not crash the process with an unhandled 'error' event
    client.on('error', () => undefined);
    client.connection.once('connect', () => (stage.loginStarted = true));
    try {
      await client.connect();
    } catch (err) {
      // pg leaves the socket open after a failure of its own (no password to send): the server
      // would hold it until authentication_timeout, and the process would not exit meanwhile
      client.connection.stream.destroy();
      throw err;
    }
    return client;
  };
  if (p.sslmode === 'prefer' || (p.sslmode === undefined && !isLoopback(p.host))) {
    // libpq's default "prefer": try TLS first, fall back to plain
    try {
      return await attempt({ ...cfg, ssl: { rejectUnauthorized: false } });
    } catch (err) {
      if (!/does not support SSL/i.test(String((err as Error).message))) throw err;
    }
  }
  return attempt(cfg);
}

export async function connect(p: ConnParams, database = p.database, session: SessionSettings = {}): Promise<Client> {
  // the connect timeout covers the whole startup; whether the socket was up tells a network
  // timeout from a login the server never finished
  const stage = { loginStarted: false };
  const base = clientConfig(p, database);
  const cfg = session.console
    ? base
    : { ...base, options: [SESSION_OPTIONS, p.options].filter(Boolean).join(' '), lock_timeout: session.lockTimeoutMs };
  const target = { ...p, database };
  try {
    if (asksFirst(target)) await askPassword(target);
    try {
      return await login(p, cfg, stage);
    } catch (err) {
      if (!(err instanceof NoPasswordSupplied)) throw err;
      // as psql: ask between attempts, so that typing counts against neither timeout
      await askPassword(target);
      return await login(p, cfg, stage);
    }
  } catch (err) {
    throw toOperatorError(err, target, 'connect to', stage);
  }
}
