// pgrevoke sessions: option parsing and the one pure filter -> SQL builder. Values only ever travel as
// parameters; the only text spliced into the SQL comes from fixed tables in this file.
import { literalList } from '../pg/quote.js';
import { ACTIVITY_COLUMNS } from '../checks/sessions.js';
import { usageError } from '../errors.js';
import { inRanges, mappedTwin, parseRange, rangeText } from '../util/address.js';
import { durationFlag, MAX_AGE_S } from '../util/flags.js';

export const SORT_KEYS = ['pid', 'user', 'database', 'started', 'idle', 'xact_age'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** The values pg_stat_activity.state takes (PG14..18; 'starting' is PG18). */
export const STATES = [
  'active',
  'idle',
  'idle in transaction',
  'idle in transaction (aborted)',
  'fastpath function call',
  'disabled',
  'starting',
] as const;

/** States in which a session waits for its client: what --idle-longer-than and "idle for" measure. */
export const IDLE_STATES = ['idle', 'idle in transaction', 'idle in transaction (aborted)'] as const;

/** Backends that are client connections; everything else (checkpointer, autovacuum, ...) needs --all. */
export const CLIENT_BACKEND_TYPES = ['client backend', 'walsender'] as const;

export interface SessionFilters {
  /** Exact login role names (pg_stat_activity.usename); any of them. */
  users: string[];
  databases: string[];
  states: string[];
  /** Exact application_name values. */
  applications: string[];
  /** Normalized `address/prefix` strings; a session matches when its client address is inside any (either form of IPv4). */
  clients: string[];
  /** Only sessions idle (see IDLE_STATES) for longer than this many seconds. */
  idleLongerThanS: number | null;
  /** Include non-client backends (checkpointer, autovacuum, background workers...). */
  all: boolean;
  sort: SortKey;
}

export const NO_FILTERS: SessionFilters = {
  users: [],
  databases: [],
  states: [],
  applications: [],
  clients: [],
  idleLongerThanS: null,
  all: false,
  sort: 'started',
};

// the duration syntax lives with the other number parsers; re-exported for the sessions flags' callers
export { parseDuration } from '../util/flags.js';

export function parseSort(text: string | undefined): SortKey {
  if (text === undefined) return 'started';
  if ((SORT_KEYS as readonly string[]).includes(text)) return text as SortKey;
  throw usageError(`invalid --sort: "${text}"`, `one of ${SORT_KEYS.join(', ')}`);
}

export function parseState(text: string): string {
  if ((STATES as readonly string[]).includes(text)) return text;
  throw usageError(`invalid --state: "${text}"`, `one of ${STATES.map((s) => `'${s}'`).join(', ')}`);
}

/** An address or CIDR range -> `address/prefix` (what the inet `<<=` test and the client-side match use). */
export function parseClient(text: string): string {
  const r = parseRange(text);
  if (r) return rangeText(r);
  throw usageError(`invalid --client: "${text}"`, 'an IP address or a CIDR range, e.g. 10.1.2.3, 10.0.0.0/8, ::1, fd00::/8');
}

/** The ranges as the SQL test takes them: each IPv4 range also in its IPv4-mapped IPv6 form, and back (src/util/address.ts). */
export function clientRanges(ranges: readonly string[]): string[] {
  return [
    ...new Set(
      ranges.flatMap((text) => {
        const r = parseRange(text)!;
        const twin = mappedTwin(r);
        return twin ? [rangeText(r), rangeText(twin)] : [rangeText(r)];
      }),
    ),
  ];
}

/** Client-side twin of the SQL `client_addr <<= ANY(...)` test, for rows that did not come through it. */
export function clientMatches(addr: string | null, ranges: readonly string[]): boolean {
  if (ranges.length === 0) return true;
  return (
    addr !== null &&
    inRanges(
      addr,
      ranges.map((r) => parseRange(r)!),
    )
  );
}

const ORDER_BY: Record<SortKey, string> = {
  pid: 'a.pid',
  user: 'a.usename NULLS LAST, a.pid',
  database: 'a.datname NULLS LAST, a.pid',
  started: 'a.backend_start NULLS LAST, a.pid',
  // longest idle first; sessions that are not idle last
  idle: 'idle_seconds DESC NULLS LAST, a.pid',
  // oldest open transaction first
  xact_age: 'a.xact_start NULLS LAST, a.pid',
};

export interface BuiltQuery {
  text: string;
  values: unknown[];
}

/** The pg_stat_activity listing for these filters: fixed SQL text, values as parameters. */
export function buildSessionsQuery(f: SessionFilters): BuiltQuery {
  const values: unknown[] = [];
  const param = (v: unknown, cast: string) => {
    values.push(v);
    return `$${values.length}::${cast}`;
  };
  const where = ['a.pid <> pg_backend_pid()'];
  if (!f.all)
    // an operator without pg_read_all_stats sees other roles' backends with a NULL backend_type:
    // a row with a role is a client of that role; role-less NULL rows are background processes
    where.push(`(a.backend_type IN (${literalList(CLIENT_BACKEND_TYPES)}) OR (a.backend_type IS NULL AND a.usesysid IS NOT NULL))`);
  if (f.users.length) where.push(`a.usename::text = ANY(${param(f.users, 'text[]')})`);
  if (f.databases.length) where.push(`a.datname::text = ANY(${param(f.databases, 'text[]')})`);
  if (f.states.length) where.push(`a.state = ANY(${param(f.states, 'text[]')})`);
  if (f.applications.length) where.push(`a.application_name = ANY(${param(f.applications, 'text[]')})`);
  if (f.clients.length) where.push(`a.client_addr <<= ANY(${param(clientRanges(f.clients), 'inet[]')})`);
  if (f.idleLongerThanS !== null)
    where.push(
      `a.state IN (${literalList(IDLE_STATES)}) AND a.state_change < clock_timestamp() - ${param(f.idleLongerThanS, 'float8')} * interval '1 second'`,
    );
  // GREATEST ignores NULLs, hence the CASEs: no transaction / not idle must stay NULL, not 0
  const text = `SELECT ${ACTIVITY_COLUMNS},
  CASE WHEN a.state IN (${literalList(IDLE_STATES)}) THEN GREATEST(0, EXTRACT(epoch FROM clock_timestamp() - a.state_change))::float8 END AS idle_seconds,
  CASE WHEN a.xact_start IS NOT NULL THEN GREATEST(0, EXTRACT(epoch FROM clock_timestamp() - a.xact_start))::float8 END AS xact_seconds
FROM pg_stat_activity a
WHERE ${where.join('\n  AND ')}
ORDER BY ${ORDER_BY[f.sort]}`;
  return { text, values };
}

/** The command-line options of `pgrevoke sessions`, as commander hands them over. */
export interface SessionsOptions {
  user?: string[];
  database?: string[];
  state?: string[];
  application?: string[];
  client?: string[];
  idleLongerThan?: string;
  sort?: string;
  all?: boolean;
}

export function filtersFromOptions(o: SessionsOptions): SessionFilters {
  const idle = o.idleLongerThan === undefined ? null : durationFlag(o.idleLongerThan, '--idle-longer-than', { min: 0, max: MAX_AGE_S });
  return {
    users: o.user ?? [],
    databases: o.database ?? [],
    states: (o.state ?? []).map(parseState),
    applications: o.application ?? [],
    clients: (o.client ?? []).map(parseClient),
    idleLongerThanS: idle,
    all: Boolean(o.all),
    sort: parseSort(o.sort),
  };
}

/** `--watch` alone = every 2 s; `--watch 5` or `--watch 500ms` otherwise; null without --watch. */
export function parseWatch(value: boolean | string | undefined): number | null {
  if (value === undefined || value === false) return null;
  if (value === true) return 2;
  return durationFlag(value, '--watch', { min: 0.1, max: 3600 });
}
