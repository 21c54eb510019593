// Small shared pieces of human output: tables, truncation, names, durations.
import Table from 'cli-table3';
import cliTruncate from 'cli-truncate';
import stringWidth from 'string-width';
import wrapAnsi from 'wrap-ansi';
import type { ChalkInstance } from 'chalk';
import type { Finding, Severity } from '../checks/types.js';
import { ident } from '../pg/quote.js';
import { hasUnsafe } from '../util/terminal-safe.js';
import { fitColumns } from './table-fit.js';
import { tableLayout, type TableLayout } from './layout.js';

export type Cell = string | number | null | undefined;

/** A table column: its heading, and what may happen to it on a terminal too narrow for the whole table. */
export interface Column {
  head: string;
  /** Free text (a query, an application, a detail) that may be cut with an ellipsis, down to this many columns. */
  shrink?: number;
  /** Its place in the table's drop order, used when cutting is not enough: 1 goes first; absent: never dropped. */
  drop?: number;
  /** Piped output cuts it at this many characters, as it always has; a terminal fits it instead, --wide shows it whole. */
  cap?: number;
  /** Where a cut goes: at the end (default), or in the middle for paths, whose file name is at the end. */
  cut?: 'end' | 'middle';
}

/** Whitespace (newlines in a query) as single spaces: one line per row. */
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

function cellText(col: Column, v: Cell, how: TableLayout): string {
  if (v === null || v === undefined) return '';
  const text = String(v);
  if (col.shrink === undefined && col.cap === undefined) return text;
  if (how.columns === null && !how.wide) return col.cap === undefined ? text : truncate(text, col.cap);
  return oneLine(text);
}

/** Display width as a terminal shows it: of the widest line, without color codes. */
const widthOf = (text: string) => Math.max(0, ...text.split('\n').map((l) => stringWidth(l)));

/** Cut to `width` display columns with an ellipsis; wide characters, emoji and colors counted as a terminal shows them. */
function cutTo(text: string, width: number, at: Column['cut'] = 'end'): string {
  return widthOf(text) <= width ? text : cliTruncate(text, width, { position: at });
}

function draw(head: string[], rows: string[][], c: ChalkInstance, widths?: number[]): string {
  const t = new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [] },
    wordWrap: false,
    // the fitted widths, padding included: cli-table3 then never lays a row out wider than planned
    ...(widths ? { colWidths: widths.map((w) => w + 2) } : {}),
  });
  for (const r of rows) t.push(r);
  return t.toString();
}

/**
 * The one table helper. Piped (no terminal) it prints every column, capped columns cut as before; on
 * a terminal it fits the width (src/report/table-fit.ts): cuttable columns cut first, then columns
 * dropped in their declared order, and a last line names what was dropped. --wide shows everything.
 */
export function table(
  cols: readonly (Column | string)[],
  rows: readonly Cell[][],
  c: ChalkInstance,
  how: TableLayout = tableLayout(),
): string {
  const spec = cols.map((col) => (typeof col === 'string' ? { head: col } : col));
  const text = rows.map((r) => spec.map((col, i) => cellText(col, r[i], how)));
  if (how.columns === null || how.wide)
    return draw(
      spec.map((s) => s.head),
      text,
      c,
    );
  const fit = fitColumns(
    spec.map((col, i) => {
      const head = widthOf(col.head);
      const natural = Math.max(head, ...text.map((r) => widthOf(r[i]!)));
      return { natural, min: col.shrink === undefined ? undefined : Math.max(col.shrink, head), drop: col.drop };
    }),
    how.columns,
  );
  const kept = fit.keep.map((k) => spec[k]!);
  const drawn = draw(
    kept.map((s) => s.head),
    text.map((r) => fit.keep.map((k, j) => cutTo(r[k]!, fit.widths[j]!, spec[k]!.cut))),
    c,
    fit.widths,
  );
  const hidden = spec.filter((_, i) => !fit.keep.includes(i)).map((s) => s.head);
  if (!hidden.length) return drawn;
  return `${drawn}\n${c.dim(cutTo(`not shown (--wide shows them): ${hidden.join(', ')}`, how.columns))}`;
}

/**
 * A line of prose (a finding's detail, a section's note) on a terminal: wrapped at the width tables
 * fit, its continuation lines indented by `hang` (default: the line's own leading spaces), so that a
 * finding stays readable at 80 columns instead of wrapping back to the first column. Piped, with
 * --wide, or when it fits: the line as it is.
 */
export function fitLine(line: string, hang?: number, how: TableLayout = tableLayout()): string {
  const width = how.columns;
  if (width === null || how.wide || widthOf(line) <= width) return line;
  const lead = line.length - line.trimStart().length;
  const indent = hang ?? lead;
  const [first = '', ...rest] = wrapAnsi(line.trimStart(), Math.max(10, width - Math.max(lead, indent)), { hard: true }).split('\n');
  return [' '.repeat(lead) + first, ...rest.map((l) => ' '.repeat(indent) + l)].join('\n');
}

/** fitLine over each line of a text. */
export function fitText(text: string, how: TableLayout = tableLayout()): string {
  return text
    .split('\n')
    .map((l) => fitLine(l, undefined, how))
    .join('\n');
}

/** One line, at most n characters: queries in tables. JSON keeps them whole. */
export function truncate(text: string | null | undefined, n = 60): string {
  if (!text) return '';
  const flat = oneLine(text);
  return flat.length > n ? `${flat.slice(0, n - 1)}\u2026` : flat;
}

// Characters that would move the cursor, ring, recolor or reorder the text around a name on a
// terminal: C0 and C1 controls, DEL, and the bidirectional marks, overrides and isolates.

/**
 * A role or database name as text output shows it: the SQL identifier a DBA can paste into psql
 * (`"we""ird user"`), never a JSON string (`"we\"ird user"`). A name holding a control or bidi
 * character is written as a Unicode-escaped identifier (`U&"a\000Ab"`), still exact SQL, so that
 * the name cannot act on the terminal. JSON output keeps names as they are.
 */
export function shownName(name: string): string {
  if (!hasUnsafe(name)) return ident(name);
  const body = [...name]
    .map((ch) => {
      if (ch === '\\') return '\\\\';
      if (ch === '"') return '""';
      if (!hasUnsafe(ch)) return ch;
      return `\\${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    })
    .join('');
  return `U&"${body}"`;
}

export function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined) return '';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

export function severityLabel(s: Severity, c: ChalkInstance): string {
  const label = s.toUpperCase().padEnd(8);
  switch (s) {
    case 'critical':
      return c.red.bold(label);
    case 'high':
      return c.red(label);
    case 'medium':
      return c.yellow(label);
    case 'low':
      return c.cyan(label);
    default:
      return c.dim(label);
  }
}

export function renderFindings(findings: Finding[], c: ChalkInstance): string[] {
  if (findings.length === 0) return [c.green('No findings.')];
  const out: string[] = [];
  const indent = (text: string) => text.replace(/\n/g, '\n         ');
  for (const f of findings) {
    out.push(fitLine(`${severityLabel(f.severity, c)} ${c.bold(f.id)}  ${f.title}`, 9));
    out.push(fitText(`         ${indent(f.detail)}`));
    out.push(fitText(`         ${c.dim('fix:')} ${indent(f.remediation)}`));
  }
  return out;
}

/** The heading of one node's section in text output: `== name (primary) ==`. */
export function nodeHeading(n: { node: string; role: string | null }, c: ChalkInstance): string {
  return c.bold(`== ${n.node}${n.role ? ` (${n.role})` : ''} ==`);
}
