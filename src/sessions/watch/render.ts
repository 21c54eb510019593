// The live view's frame: state -> exactly `rows` lines, none wider than `columns` (display width, so
// wide characters count twice). Pure; the terminal module only writes the lines where they go.
import type { ChalkInstance } from 'chalk';
import cliTruncate from 'cli-truncate';
import stringWidth from 'string-width';
import { seconds } from '../../report/format.js';
import { terminalSafe } from '../../util/terminal-safe.js';
import { confirmQuestion } from './keys.js';
import { headerHeight, MAX_DOWN_LINES, pageSize, visibleRows, type WatchRow, type WatchState } from './state.js';

interface Column {
  head: string;
  cell: (r: WatchRow) => string;
  min: number;
  max: number;
  right?: boolean;
}

const STATE_LABEL: Record<string, string> = {
  'idle in transaction': 'idle in tx',
  'idle in transaction (aborted)': 'aborted tx',
  'fastpath function call': 'fastpath',
};

/**
 * One line of plain text: whitespace runs become one space, and every other control character (and
 * bidirectional mark) a replacement mark, since role, database and application names and query texts
 * are chosen by whoever connects, and an escape sequence in them must not reach the operator's terminal.
 */
export function plain(text: string | null | undefined): string {
  return terminalSafe((text ?? '').replace(/\s+/g, ' ')).trim();
}

/** Truncated (with an ellipsis) and padded to exactly `width` columns. */
function pad(text: string, width: number, right = false): string {
  const t = cliTruncate(text, width);
  const fill = ' '.repeat(Math.max(0, width - stringWidth(t)));
  return right ? fill + t : t + fill;
}

const fit = (text: string, width: number) => cliTruncate(text, width);

const NODE: Column = { head: 'node', cell: (r) => r.node, min: 6, max: 24 };
const FIXED: Column[] = [
  { head: 'pid', cell: (r) => String(r.pid), min: 3, max: 10, right: true },
  { head: 'user', cell: (r) => (r.hidden ? '(unknown)' : (r.user ?? '')), min: 4, max: 16 },
  { head: 'database', cell: (r) => r.database ?? '', min: 4, max: 16 },
  { head: 'state', cell: (r) => (r.state ? (STATE_LABEL[r.state] ?? r.state) : ''), min: 4, max: 10 },
  { head: 'time', cell: (r) => seconds(r.seconds), min: 4, max: 7, right: true },
  { head: 'client', cell: (r) => r.client, min: 6, max: 21 },
  { head: 'application', cell: (r) => r.application, min: 6, max: 16 },
];
/** Given up first when the terminal is narrow, in this order, so that the query keeps QUERY_MIN columns. */
const DROP_ORDER = ['application', 'client', 'database'];
const QUERY_MIN = 20;
const MARK = 2;

/** The columns that fit `width`, each with its width, and what is left for the query. */
function layout(rows: WatchRow[], width: number, multiNode: boolean): { cols: (Column & { width: number })[]; query: number } {
  const natural = (c: Column) => Math.min(c.max, Math.max(c.min, stringWidth(c.head), ...rows.map((r) => stringWidth(plain(c.cell(r))))));
  let cols = [...(multiNode ? [NODE] : []), ...FIXED].map((c) => ({ ...c, width: natural(c) }));
  const used = () => MARK + cols.reduce((n, c) => n + c.width + 1, 0);
  for (const head of DROP_ORDER) if (used() + QUERY_MIN > width) cols = cols.filter((c) => c.head !== head);
  // still too wide: the name columns give way down to their minimum
  for (const c of cols)
    if (used() + QUERY_MIN > width && c.head !== 'pid') c.width = Math.max(c.min, c.width - (used() + QUERY_MIN - width));
  return { cols, query: Math.max(0, width - used()) };
}

function rowLine(r: WatchRow, cols: (Column & { width: number })[], query: number, mark: string): string {
  const cells = cols.map((c) => pad(plain(c.cell(r)), c.width, c.right));
  return `${mark} ${cells.join(' ')} ${query > 0 ? pad(plain(r.query), query) : ''}`;
}

/** `5 sessions: 1 active, 4 idle`: every listed session of every node, by state, busiest first. */
function counts(rows: WatchRow[]): string {
  const by = new Map<string, number>();
  for (const r of rows) by.set(r.state ?? 'unknown', (by.get(r.state ?? 'unknown') ?? 0) + 1);
  const order = ['active', 'idle in transaction', 'idle in transaction (aborted)', 'idle'];
  const keys = [...by.keys()].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || (a < b ? -1 : 1));
  const parts = keys.map((k) => `${by.get(k)} ${k}`);
  return `${rows.length} session${rows.length === 1 ? '' : 's'}${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

/** `left` cut to leave room for `right`, which ends at the last column (the clock, as in top). */
function spread(left: string, right: string, width: number): string {
  const room = width - stringWidth(right);
  if (room < 1) return fit(right, width);
  const l = cliTruncate(left, room);
  return l + ' '.repeat(room - stringWidth(l)) + right;
}

function header(s: WatchState, shown: number): { title: string; status: string; down: string[] } {
  const snap = s.snapshot;
  const time = snap ? `${snap.at.slice(11, 19)} UTC` : 'connecting…';
  const title = spread(`pgrevoke sessions  ${plain(s.title)}`, `  ${time}`, s.columns);
  const page = pageSize(s);
  // what narrows the view first: on a narrow terminal the end of the line is what is cut
  const extra = [
    ...(s.filter ? [`filter "${plain(s.filter)}": ${shown} shown`] : []),
    ...(shown > page && page > 0 ? [`rows ${s.top + 1}-${Math.min(shown, s.top + page)} of ${shown}`] : []),
    `sort: ${s.sort}`,
    `every ${s.interval}s`,
  ];
  const status = s.error ? `refresh failed: ${plain(s.error)}` : `${counts(snap?.rows ?? [])}   ${extra.join('   ')}`;
  const all = (snap?.down ?? []).map((d) => `${plain(d.node)}: ${plain(d.error)}`);
  const down =
    all.length > MAX_DOWN_LINES ? [...all.slice(0, MAX_DOWN_LINES - 1), `and ${all.length - MAX_DOWN_LINES + 1} more nodes down`] : all;
  return { title, status, down };
}

function footer(s: WatchState): string {
  const m = s.mode;
  if (m.kind === 'confirm') return confirmQuestion(m.action, m.row, s.multiNode);
  if (m.kind === 'busy') return m.text;
  if (m.kind === 'filter') return `filter by user or database: ${plain(m.input)}_   Enter apply   Esc clear`;
  if (s.message) return plain(s.message);
  return s.keys ? 'j/k ↑↓ select   K terminate   C cancel   s sort   / filter   q quit' : 'Ctrl+C to quit';
}

/** The frame: exactly s.rows lines, each at most s.columns wide. */
export function renderFrame(s: WatchState, c: ChalkInstance): string[] {
  const width = s.columns;
  const blank = () => Array.from({ length: Math.max(0, s.rows) }, () => '');
  if (width < 20 || s.rows < headerHeight(s) + 2) {
    const out = blank();
    if (out.length) out[0] = fit(`terminal too small (${width}x${s.rows}); q quits`, width);
    return out;
  }
  const rows = visibleRows(s);
  const { cols, query } = layout(rows, width, s.multiNode);
  const h = header(s, rows.length);
  const out: string[] = [c.bold(fit(h.title, width)), (s.error ? c.red : (x: string) => x)(fit(h.status, width))];
  for (const d of h.down) out.push(c.red(fit(d, width)));
  out.push(
    c.dim(
      fit(`${' '.repeat(MARK - 1)} ${cols.map((col) => pad(col.head, col.width, col.right)).join(' ')} ${query > 0 ? 'query' : ''}`, width),
    ),
  );
  const page = pageSize(s);
  const shown = rows.slice(s.top, s.top + page);
  for (const [i, r] of shown.entries()) {
    const selected = s.top + i === s.index;
    const line = pad(rowLine(r, cols, query, selected ? '>' : ' '), width);
    out.push(selected ? c.inverse(line) : r.hidden ? c.yellow(line) : line);
  }
  if (rows.length === 0)
    out.push(fit(s.snapshot ? (s.filter ? `no session matches "${plain(s.filter)}" (Esc clears)` : 'no sessions') : '', width));
  while (out.length < s.rows - 1) out.push('');
  const foot = fit(footer(s), width);
  out.push(s.mode.kind === 'confirm' ? c.bold.yellow(foot) : s.error ? c.red(foot) : foot);
  return out.slice(0, s.rows);
}
