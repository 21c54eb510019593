// Connection parameters resolved the way psql does it:
// flags > --dsn (or DATABASE_URL) > service file entry > PG* environment > defaults.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseIni } from 'ini';
import { parse as parseUri } from 'pg-connection-string';
import { usageError } from '../errors.js';
import { MAX_TIMER_MS, parseNumber, type NumberRange } from '../util/flags.js';
import { checkRoleName } from '../util/role-name.js';

export interface ConnParams {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
  sslmode?: string;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  connectTimeout: number;
  applicationName: string;
  options?: string;
  /** No host was given: the socket directories looked in (host is the one chosen), named when the connection fails. */
  socketSearch?: string[];
}

export interface ConnFlags {
  dsn?: string;
  host?: string;
  port?: string | number;
  username?: string;
  dbname?: string;
  connectTimeout?: string | number;
}

type Params = Partial<Record<string, string>>;

const KEYS = new Set([
  'host',
  'hostaddr',
  'port',
  'user',
  'password',
  'dbname',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'connect_timeout',
  'application_name',
  'service',
  'options',
  'passfile',
]);

/**
 * Parse libpq's keyword=value form: `host=db port=5432 user='a b'`. A failure quotes the text it
 * stopped at, except after an unquoted password: a password with spaces given without quotes runs
 * on into the "keywords" that follow, so nothing after it is quoted (that would be the password).
 */
export function parseKeywordValue(dsn: string): Params {
  const out: Params = {};
  const re = /\s*([A-Za-z_]+)\s*=\s*('((?:[^'\\]|\\.)*)'|(?:[^\s\\]|\\.)+)?/gy;
  const AFTER_PASSWORD = 'after an unquoted password (not shown)';
  const QUOTE_HINT = "a password with spaces or quotes goes in single quotes: password='two words'";
  let afterBarePassword = false;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < dsn.length && (m = re.exec(dsn))) {
    pos = re.lastIndex;
    const key = m[1]!;
    if (!KEYS.has(key))
      throw afterBarePassword
        ? usageError(`invalid connection option ${AFTER_PASSWORD}`, QUOTE_HINT)
        : usageError(`invalid connection option "${key}"`, 'see the libpq connection keywords');
    const raw = m[3] ?? m[2] ?? '';
    out[key] = raw.replace(/\\(.)/g, '$1');
    if (key === 'password') afterBarePassword ||= m[3] === undefined;
  }
  const rest = dsn.slice(pos).trim();
  if (rest) {
    const token = rest.split(/\s/)[0]!.slice(0, 20);
    throw afterBarePassword || /password/i.test(token)
      ? usageError(`could not parse the connection string ${AFTER_PASSWORD}`, QUOTE_HINT)
      : usageError(`could not parse the connection string near "${token}"`);
  }
  return out;
}

function parseDsn(dsn: string): Params {
  if (/^postgres(ql)?:\/\//i.test(dsn)) {
    let parsed: ReturnType<typeof parseUri>;
    try {
      parsed = parseUri(dsn);
    } catch {
      throw usageError('could not parse the connection URI', 'expected postgresql://user@host:port/dbname');
    }
    const out: Params = {};
    const set = (k: string, v: unknown) => {
      if (v !== undefined && v !== null && v !== '') out[k] = String(v);
    };
    set('host', parsed.host);
    set('port', parsed.port);
    set('user', parsed.user);
    set('password', parsed.password);
    set('dbname', parsed.database);
    set('application_name', parsed.application_name);
    set('options', parsed.options);
    const extra = parsed as Record<string, unknown>;
    for (const k of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'connect_timeout', 'service']) set(k, extra[k]);
    return out;
  }
  if (dsn.includes('=')) return parseKeywordValue(dsn);
  // psql treats a bare word as a database name
  return { dbname: dsn };
}

function serviceParams(service: string, env: NodeJS.ProcessEnv): Params {
  const files = [
    env.PGSERVICEFILE ?? path.join(os.homedir(), '.pg_service.conf'),
    path.join(env.PGSYSCONFDIR ?? '/etc/postgresql-common', 'pg_service.conf'),
  ];
  for (const file of files) {
    if (!existsSync(file)) continue;
    const parsed = parseIni(readFileSync(file, 'utf8')) as Record<string, Record<string, string>>;
    const section = parsed[service];
    if (section) return { ...section };
  }
  throw usageError(`definition of service "${service}" not found`, `looked in ${files.join(' and ')}`);
}

/**
 * Where the server's Unix socket is looked for when no host is given. libpq knows one directory,
 * compiled in (DEFAULT_PGSOCKET_DIR: /var/run/postgresql in Debian's and Red Hat's packages, /tmp
 * upstream); pgrevoke is built against none, so it looks in each, packaged servers' first.
 */
export const DEFAULT_SOCKET_DIRS: readonly string[] = ['/var/run/postgresql', '/run/postgresql', '/tmp'];

/** The socket file of a socket directory and port, as libpq names it. */
export function socketFile(dir: string, port: number): string {
  return path.join(dir, `.s.PGSQL.${port}`);
}

/**
 * libpq's default host: a socket directory, never TCP. The first of `dirs` holding the port's socket;
 * else the first that exists (the connection then fails naming the socket file it looked for).
 * `searched` lists the existing directories once each (/var/run is often a link to /run).
 */
export function defaultSocketHost(port: number, dirs: readonly string[] = DEFAULT_SOCKET_DIRS): { host: string; searched: string[] } {
  const seen = new Set<string>();
  const searched: string[] = [];
  for (const dir of dirs) {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      continue; // no such directory
    }
    if (seen.has(real)) continue;
    seen.add(real);
    searched.push(dir);
  }
  const found = searched.find((dir) => existsSync(socketFile(dir, port)));
  return { host: found ?? searched[0] ?? dirs[0] ?? '/tmp', searched };
}

/** --port, PGPORT, port= in a DSN or a service. */
const PORT: NumberRange = { integer: true, min: 1, max: 65535 };
/** Seconds, 0 for none; at most what Node's timer takes in ms (a longer one would fire after 1 ms). */
export const CONNECT_TIMEOUT: NumberRange = { integer: true, min: 0, max: Math.floor(MAX_TIMER_MS / 1000), unit: 'seconds' };

export function resolveConnParams(
  flags: ConnFlags = {},
  env: NodeJS.ProcessEnv = process.env,
  socketDirs: readonly string[] = DEFAULT_SOCKET_DIRS,
): ConnParams {
  const dsnText = flags.dsn ?? env.DATABASE_URL;
  const dsn = dsnText ? parseDsn(dsnText) : {};
  const serviceName = dsn.service ?? env.PGSERVICE;
  const svc = serviceName ? serviceParams(serviceName, env) : {};
  const pick = (key: string, envName: string, flag?: string | number): string | undefined =>
    flag !== undefined && flag !== '' ? String(flag) : (dsn[key] ?? svc[key] ?? env[envName] ?? undefined);
  // a number is checked where it was given, and an error names that place: an empty flag or
  // variable is refused, not taken as "not given" (it would be 0, or silently another source's)
  const number = (key: string, envName: string, flagName: string, flag: string | number | undefined, r: NumberRange) => {
    if (flag !== undefined) return parseNumber(String(flag), flagName, r);
    if (dsn[key] !== undefined) return parseNumber(dsn[key], `${key} in the connection string`, r);
    if (svc[key] !== undefined) return parseNumber(svc[key], `${key} in service "${serviceName}"`, r);
    if (env[envName] !== undefined) return parseNumber(env[envName], envName, r);
    return undefined;
  };

  const port = number('port', 'PGPORT', '--port', flags.port, PORT) ?? 5432;
  // a user name PostgreSQL would cut to 63 bytes would log in as another role (role-name.ts)
  const user = checkRoleName(pick('user', 'PGUSER', flags.username) ?? os.userInfo().username, 'the connecting user');
  const connectTimeout = number('connect_timeout', 'PGCONNECT_TIMEOUT', '--connect-timeout', flags.connectTimeout, CONNECT_TIMEOUT) ?? 10;
  // an empty host (PGHOST=, host='') is no host, as for libpq
  const given = pick('host', 'PGHOST', flags.host) || pick('hostaddr', 'PGHOSTADDR') || undefined;
  const socket = given === undefined ? defaultSocketHost(port, socketDirs) : undefined;
  return {
    host: given ?? socket!.host,
    ...(socket && { socketSearch: socket.searched }),
    port,
    user,
    database: pick('dbname', 'PGDATABASE', flags.dbname) ?? user,
    // an empty password is none, as for libpq: pgpass, then the terminal
    password: (dsn.password ?? svc.password ?? env.PGPASSWORD) || undefined,
    sslmode: pick('sslmode', 'PGSSLMODE'),
    sslrootcert: pick('sslrootcert', 'PGSSLROOTCERT'),
    sslcert: pick('sslcert', 'PGSSLCERT'),
    sslkey: pick('sslkey', 'PGSSLKEY'),
    connectTimeout,
    applicationName: pick('application_name', 'PGAPPNAME') ?? 'pgrevoke',
    options: pick('options', 'PGOPTIONS'),
  };
}

/** A node a command acts on: its host:port name and its connection parameters. */
export interface TargetNode {
  /** host:port, as in audit lines of every command. */
  name: string;
  params: ConnParams;
}

/** A node's name in reports, audit lines and NODE:PID: host:port. */
export function nodeLabel(p: Pick<ConnParams, 'host' | 'port'>): string {
  return `${p.host}:${p.port}`;
}

/** host:port/db as user — never with the password. */
export function describeConn(p: ConnParams): string {
  const host = p.host.startsWith('/') ? `socket ${p.host}` : p.host;
  return `${p.user}@${host}:${p.port}/${p.database}`;
}
