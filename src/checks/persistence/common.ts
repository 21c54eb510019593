// Small pure helpers shared by the persistence checks: reading rows, quoting, and rendering
// details and remediation grouped by database.
//
// An item's `name` is SQL-ready wherever a remediation statement needs it: every identifier in
// it is quoted by ident(), so the names survive any case, quote or unicode, and evaluate() can
// take them apart again with splitQuoted() without guessing.
import { ident } from '../../pg/quote.js';
import { SEVERITY_ORDER, type PersistenceItem, type Severity } from '../types.js';
import type { Row } from './types.js';

export function str(row: Row, key: string): string {
  const v = row[key];
  return v === null || v === undefined ? '' : String(v);
}

export function optStr(row: Row, key: string): string | null {
  const v = row[key];
  return v === null || v === undefined ? null : String(v);
}

export function optBool(row: Row, key: string): boolean | null {
  const v = row[key];
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v;
  return v === 't' || v === 'true' || v === 1;
}

export function bool(row: Row, key: string): boolean {
  return optBool(row, key) ?? false;
}

/** A text[] column: the driver parses most arrays, but accept the `{a,b}` text form too. */
export function strs(row: Row, key: string): string[] {
  const v = row[key];
  if (Array.isArray(v)) return v.filter((x) => x !== null && x !== undefined).map(String);
  if (typeof v === 'string' && v.startsWith('{') && v.endsWith('}')) {
    const body = v.slice(1, -1);
    if (!body) return [];
    const out: string[] = [];
    const re = /"((?:[^"\\]|\\.)*)"|([^,]+)/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(body))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
    return out;
  }
  return [];
}

/** `"schema"."name"`, always quoted. */
export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

const QUOTED = /("(?:[^"]|"")*")/;

/** Split SQL text into [plain, quoted, plain, quoted, ..., plain]: odd indexes are quoted identifiers. */
export function splitQuoted(text: string): string[] {
  return text.split(QUOTED);
}

/** Rewrite only the parts of `text` outside quoted identifiers (keywords, never names). */
export function mapOutsideQuotes(text: string, fn: (plain: string) => string): string {
  return splitQuoted(text)
    .map((part, i) => (i % 2 === 0 ? fn(part) : part))
    .join('');
}

/** Undo ident(): `"a""b"` -> `a"b`. */
export function unquote(quoted: string): string {
  return quoted.startsWith('"') && quoted.endsWith('"') ? quoted.slice(1, -1).replace(/""/g, '"') : quoted;
}

/** Escape control characters so that a name cannot end a `--` comment line early. */
function noControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The comment line that opens a block of SQL meant for one database. */
export function databaseMarker(database: string | null): string {
  return database === null ? '-- in any database:' : `-- in database ${noControls(ident(database))}:`;
}

/**
 * Remediation SQL grouped by the database it must run in (ALTER/DROP of a database object only
 * works when connected to that database). `lines` returns the statements for one item.
 */
export function remediationByDatabase(
  items: PersistenceItem[],
  lines: (item: PersistenceItem) => string[],
  preface: string[] = [],
): string {
  const groups = new Map<string | null, string[]>();
  for (const item of items) {
    const stmts = lines(item);
    if (!stmts.length) continue;
    const group = groups.get(item.database) ?? [];
    group.push(...stmts);
    groups.set(item.database, group);
  }
  const out = preface.map((l) => `-- ${noControls(l)}`);
  for (const [db, stmts] of groups) out.push(databaseMarker(db), ...stmts);
  return out.join('\n');
}

/** One line per item, capped, for a finding's detail. */
export function listing(intro: string, items: PersistenceItem[], max = 25): string {
  const lines = items
    .slice(0, max)
    .map((i) => `- ${i.name}${i.database === null ? '' : ` in database ${i.database}`}${i.detail ? `: ${i.detail}` : ''}`);
  if (items.length > max) lines.push(`- ... and ${items.length - max} more`);
  return [intro, ...lines].join('\n');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function worst(a: Severity, b: Severity): Severity {
  return SEVERITY_ORDER.indexOf(a) <= SEVERITY_ORDER.indexOf(b) ? a : b;
}
