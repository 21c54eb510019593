// The live view of `sessions --watch` as plain data: the last snapshot, the selection, sort, filter and
// what the bottom line is doing (browsing, typing a filter, asking y/N, signalling). Pure: the keys
// reducer (keys.ts) and the renderer (render.ts) both read it; terminal I/O lives in terminal.ts.
import type { KillAction } from '../kill.js';
import type { SessionsDoc } from '../list.js';
import { clientLabel } from '../../report/sessions.js';
import { IDLE_STATES, type SortKey } from '../filters.js';

/** The orders `s` cycles through, in this order. */
export const WATCH_SORTS = ['duration', 'pid', 'user', 'database', 'state', 'started'] as const;
export type WatchSort = (typeof WATCH_SORTS)[number];

/** One row of the view: a session, or a backend still in the post-authentication window, on one node. */
export interface WatchRow {
  /** The node's name (host:port or its fleet name), as `kill` takes it in NODE:PID. */
  node: string;
  pid: number;
  user: string | null;
  database: string | null;
  state: string | null;
  /** Time in the current state: idle for (idle states), else the transaction's age; null when unknown. */
  seconds: number | null;
  client: string;
  application: string;
  /** Tells a reused pid from the session the operator confirmed. */
  backendStart: string | null;
  query: string | null;
  hidden: boolean;
}

/** A node whose sessions could not be read this frame. */
export interface DownNode {
  node: string;
  error: string;
}

export interface Snapshot {
  /** When it was taken (ISO). */
  at: string;
  rows: WatchRow[];
  down: DownNode[];
}

export type Mode =
  | { kind: 'browse' }
  | { kind: 'filter'; input: string }
  | { kind: 'confirm'; action: KillAction; row: WatchRow }
  | { kind: 'busy'; text: string };

export interface WatchState {
  /** Where: user@host:port/db (PostgreSQL 18.4), or "3 nodes". */
  title: string;
  /** Seconds between refreshes. */
  interval: number;
  /** Several nodes: a node column, and pids named NODE:PID. */
  multiNode: boolean;
  columns: number;
  rows: number;
  snapshot: Snapshot | null;
  /** The last refresh failed (shown until one succeeds). */
  error: string | null;
  sort: WatchSort;
  /** Applied filter: a case-insensitive part of the user or database name ('' = none). */
  filter: string;
  /** The selected row, by rowKey; kept across refreshes while that session is listed. */
  selected: string | null;
  /** Its position, for when it goes away: the selection stays at the same place. */
  index: number;
  /** The first row shown. */
  top: number;
  mode: Mode;
  /** The outcome of the last action, shown on the bottom line until the next key. */
  message: string | null;
  /** Keys are read (stdin is a terminal); otherwise only Ctrl+C ends the view. */
  keys: boolean;
}

export interface WatchOptions {
  title: string;
  interval: number;
  multiNode: boolean;
  sort: WatchSort;
  columns: number;
  rows: number;
  keys?: boolean;
}

export function initialState(o: WatchOptions): WatchState {
  return {
    title: o.title,
    interval: o.interval,
    multiNode: o.multiNode,
    columns: o.columns,
    rows: o.rows,
    snapshot: null,
    error: null,
    sort: o.sort,
    filter: '',
    selected: null,
    index: 0,
    top: 0,
    mode: { kind: 'browse' },
    message: null,
    keys: o.keys ?? true,
  };
}

/** The watch order a `--sort` flag starts with: idle and xact_age are both "longest first". */
export function watchSortFor(sort: SortKey): WatchSort {
  if (sort === 'idle' || sort === 'xact_age') return 'duration';
  return sort;
}

export const rowKey = (r: Pick<WatchRow, 'node' | 'pid'>): string => `${r.node}\n${r.pid}`;

/** A node's listing as rows; hidden backends are rows too (kill can signal them). */
export function rowsOf(node: string, doc: SessionsDoc): WatchRow[] {
  const idle = IDLE_STATES as readonly (string | null)[];
  return [
    ...doc.sessions.map((s) => ({
      node,
      pid: s.pid,
      user: s.user ?? (s.userOid !== null ? `oid ${s.userOid}` : null),
      database: s.database,
      state: s.state,
      seconds: idle.includes(s.state) ? s.idleSeconds : s.xactAgeSeconds,
      client: clientLabel(s.clientAddr, s.clientPort),
      application: s.applicationName ?? '',
      backendStart: s.backendStart,
      query: s.query,
      hidden: false,
    })),
    ...doc.hiddenBackends.map((h) => ({
      node,
      pid: h.pid,
      user: null,
      database: null,
      state: 'starting',
      seconds: null,
      client: h.clientAddr ?? '',
      application: '',
      backendStart: h.backendStart,
      query: null,
      hidden: true,
    })),
  ];
}

/** Busy states first: what a responder looks for. */
const STATE_RANK = ['active', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call', 'starting', 'idle'];
const rank = (s: string | null) => {
  const i = STATE_RANK.indexOf(s ?? '');
  return i < 0 ? STATE_RANK.length : i;
};

const text = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1);
const longest = (a: WatchRow, b: WatchRow) => (b.seconds ?? -1) - (a.seconds ?? -1);
const byPid = (a: WatchRow, b: WatchRow) => a.pid - b.pid || text(a.node, b.node);

const ORDER: Record<WatchSort, (a: WatchRow, b: WatchRow) => number> = {
  duration: (a, b) => longest(a, b) || byPid(a, b),
  pid: byPid,
  user: (a, b) => text(a.user, b.user) || byPid(a, b),
  database: (a, b) => text(a.database, b.database) || byPid(a, b),
  state: (a, b) => rank(a.state) - rank(b.state) || longest(a, b) || byPid(a, b),
  started: (a, b) => text(a.backendStart, b.backendStart) || byPid(a, b),
};

/** A row the filter keeps: its user or database contains the text; hidden backends always (their role is unknown). */
function kept(r: WatchRow, filter: string): boolean {
  if (!filter || r.hidden) return true;
  const f = filter.toLowerCase();
  return [r.user, r.database].some((x) => x !== null && x.toLowerCase().includes(f));
}

/** The rows shown, in order: filtered, then sorted. */
export function visibleRows(s: WatchState): WatchRow[] {
  return (s.snapshot?.rows ?? []).filter((r) => kept(r, s.filter)).sort(ORDER[s.sort]);
}

/** At most this many lines name unreachable nodes; the last says how many more there are. */
export const MAX_DOWN_LINES = 3;

/** Lines above the rows: title, counts, unreachable nodes, the column heads. */
export function headerHeight(s: WatchState): number {
  return 3 + Math.min(s.snapshot?.down.length ?? 0, MAX_DOWN_LINES);
}

/** How many rows fit between the header and the bottom line. */
export function pageSize(s: WatchState): number {
  return Math.max(0, s.rows - headerHeight(s) - 1);
}

/** The selected row, if any row is listed. */
export function selectedRow(s: WatchState): WatchRow | null {
  return visibleRows(s)[s.index] ?? null;
}

/**
 * Re-anchor the selection after the rows changed (refresh, sort, filter, resize): the same session
 * where it is still listed, else the same position; then scroll so that it is on screen.
 */
export function settle(s: WatchState): WatchState {
  const rows = visibleRows(s);
  const found = s.selected === null ? -1 : rows.findIndex((r) => rowKey(r) === s.selected);
  const index = rows.length === 0 ? 0 : found >= 0 ? found : Math.min(s.index, rows.length - 1);
  return scrolled({ ...s, index, selected: rows[index] ? rowKey(rows[index]) : null }, rows.length);
}

/** Move the selection by `delta` rows (clamped), scrolling as needed. */
export function moveBy(s: WatchState, delta: number): WatchState {
  const rows = visibleRows(s);
  if (rows.length === 0) return s;
  const index = Math.max(0, Math.min(rows.length - 1, s.index + delta));
  return scrolled({ ...s, index, selected: rowKey(rows[index]!) }, rows.length);
}

function scrolled(s: WatchState, count: number): WatchState {
  const page = Math.max(1, pageSize(s));
  let top = Math.min(s.top, Math.max(0, count - page));
  if (s.index < top) top = s.index;
  if (s.index >= top + page) top = s.index - page + 1;
  return { ...s, top: Math.max(0, top) };
}

/** How messages and prompts name a row: `1234 (alice@app)`, NODE:PID over several nodes. */
export function describeRow(r: WatchRow, multiNode: boolean): string {
  const who = r.hidden ? 'post-authentication, role unknown' : [r.user, r.database].filter(Boolean).join('@');
  return `${multiNode ? `${r.node}:` : ''}${r.pid}${who ? ` (${who})` : ''}`;
}
