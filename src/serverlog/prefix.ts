// log_line_prefix, compiled from the server's own setting, and matched against a stderr line.
// The prefix holds client-chosen text (%u, %d, and %a, which the server cleans to printable
// ASCII), so one line can often be read in more than one way: `%u@%d ` with a user `a@b`. The
// matcher therefore returns every reading (a few at most, bounded), and the caller keeps the one the
// message agrees with. Strict shapes for what the server writes itself (%m, %p, %h, ...) keep the
// readings few.

export type PrefixField = 'time' | 'pid' | 'user' | 'database' | 'host' | 'sqlstate' | 'app';

type Token = { lit: string } | { esc: string; pad: number } | { q: true };

export interface PrefixReading {
  fields: Partial<Record<PrefixField, string>>;
  /** The level word (`FATAL`, `DETAIL`, ...) that follows the prefix. */
  level: string;
  /** Index in the line where the text after `LEVEL:  ` starts. */
  rest: number;
  /** False when the reading stopped at %q (a process without a session: no user, no client). */
  session: boolean;
}

export interface CompiledPrefix {
  source: string;
  tokens: Token[];
  /** Escapes present (`h`, `r`, `u`, ...), so callers know whether the address or the user is logged. */
  escapes: Set<string>;
}

const KNOWN = new Set(['a', 'u', 'd', 'b', 'r', 'h', 'L', 'p', 'P', 't', 'm', 'n', 'i', 'e', 'c', 'l', 's', 'v', 'x', 'Q']);

/** Parse a log_line_prefix value (as SHOW log_line_prefix prints it) into tokens. */
export function compilePrefix(prefix: string): CompiledPrefix {
  const tokens: Token[] = [];
  const escapes = new Set<string>();
  let lit = '';
  const flush = () => {
    if (lit) tokens.push({ lit });
    lit = '';
  };
  for (let i = 0; i < prefix.length; i++) {
    const c = prefix[i]!;
    if (c !== '%') {
      lit += c;
      continue;
    }
    // %[-][width]X, as elog.c's process_log_prefix_padding reads it
    const m = /^(-?\d+)?(.)/s.exec(prefix.slice(i + 1));
    if (!m) break; // a lone % at the end prints nothing
    const [all, width, ch] = m as unknown as [string, string | undefined, string];
    i += all.length;
    if (ch === '%') lit += '%';
    else if (ch === 'q') {
      flush();
      tokens.push({ q: true });
    } else if (KNOWN.has(ch)) {
      flush();
      tokens.push({ esc: ch, pad: width ? Math.abs(Number(width)) : 0 });
      escapes.add(ch);
    }
    // an unknown escape prints nothing
  }
  flush();
  return { source: prefix, tokens, escapes };
}

const STAMP_MS = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (?:[A-Za-z][A-Za-z0-9_/+-]*|[+-]\d{1,2}(?::?\d\d)?)/y;
const STAMP_S = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?:[A-Za-z][A-Za-z0-9_/+-]*|[+-]\d{1,2}(?::?\d\d)?)/y;
const SHAPES: Record<string, RegExp> = {
  m: STAMP_MS,
  t: STAMP_S,
  s: STAMP_S,
  n: /\d+\.\d{3}/y,
  p: /\d+/y,
  P: /\d*/y,
  l: /\d+/y,
  x: /\d+/y,
  Q: /-?\d+/y,
  e: /[0-9A-Z]{5}/y,
  c: /[0-9a-f]+\.[0-9a-f]+/y,
  v: /(?:\d+\/\d+)?/y,
  // a numeric address, a resolved host name, [local]; %r adds (port)
  h: /[0-9A-Za-z.:%_\-[\]]*/y,
  L: /[0-9A-Za-z.:%_\-[\]]*/y,
  r: /(?:\[local\]|[0-9A-Za-z.:%_-]+\(\d+\))?/y,
};
const FIELD: Record<string, PrefixField> = {
  m: 'time',
  t: 'time',
  p: 'pid',
  u: 'user',
  d: 'database',
  h: 'host',
  r: 'host',
  e: 'sqlstate',
  a: 'app',
};

// what elog.c's error_severity() writes, then a colon and two spaces
const LEVEL = /(DEBUG|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|QUERY|CONTEXT|LOCATION|STATEMENT): {2}/y;

function levelAt(line: string, pos: number): { level: string; rest: number } | null {
  LEVEL.lastIndex = pos;
  const m = LEVEL.exec(line);
  return m ? { level: m[1]!, rest: pos + m[0].length } : null;
}

/** Bounds on the search: a line is read at most this many ways, with at most this many steps. */
const MAX_READINGS = 8;
const MAX_STEPS = 20_000;
/** The prefix ends within this many characters of the line start (names are at most 63 bytes). */
const MAX_PREFIX = 2048;

/** Where a strict-shape escape may end when it starts at `at` (padding spaces around it allowed). */
function shapedEnds(line: string, at: number, esc: string, pad: number): number[] {
  let start = at;
  if (pad) while (line[start] === ' ' && start - at < pad) start++;
  const re = SHAPES[esc]!;
  re.lastIndex = start;
  const m = re.exec(line);
  if (!m) return [];
  let end = start + m[0].length;
  const ends = [end];
  if (pad) while (line[end] === ' ' && end - at < pad) ends.push(++end);
  return ends;
}

interface Search {
  line: string;
  tokens: Token[];
  /** Match the tokens only, with no level after them (matchHead). */
  headOnly?: boolean;
  limit: number;
  steps: number;
  out: PrefixReading[];
}

function walk(s: Search, ti: number, pos: number, fields: Partial<Record<PrefixField, string>>): void {
  if (s.out.length >= MAX_READINGS || ++s.steps > MAX_STEPS) return;
  const tok = s.tokens[ti];
  if (tok === undefined && s.headOnly) {
    s.out.push({ fields: { ...fields }, level: '', rest: pos, session: true });
    return;
  }
  if (tok === undefined || 'q' in tok) {
    const lv = levelAt(s.line, pos);
    if (lv) s.out.push({ fields: { ...fields }, ...lv, session: tok === undefined });
    if (tok !== undefined) walk(s, ti + 1, pos, fields);
    return;
  }
  if ('lit' in tok) {
    if (s.line.startsWith(tok.lit, pos)) walk(s, ti + 1, pos + tok.lit.length, fields);
    return;
  }
  const field = FIELD[tok.esc];
  const take = (end: number) => {
    const value = s.line.slice(pos, end).trim();
    walk(s, ti + 1, end, field ? { ...fields, [field]: tok.pad ? value : s.line.slice(pos, end) } : fields);
  };
  if (SHAPES[tok.esc]) {
    for (const end of shapedEnds(s.line, pos, tok.esc, tok.pad)) take(end);
    return;
  }
  // free text (%u %d %a %b %i): every end at which the next literal, if any, follows
  const next = s.tokens[ti + 1];
  const nextLit = next && 'lit' in next ? next.lit : null;
  for (let end = pos; end <= s.limit; end++) {
    if (nextLit !== null) {
      end = s.line.indexOf(nextLit, end);
      if (end < 0 || end > s.limit) return;
    }
    take(end);
    if (s.out.length >= MAX_READINGS || s.steps > MAX_STEPS) return;
  }
}

/** Every reading of the prefix at the start of `line` (none when the line does not start with it). */
export function matchPrefix(prefix: CompiledPrefix, line: string): PrefixReading[] {
  const s: Search = { line, tokens: prefix.tokens, limit: Math.min(line.length, MAX_PREFIX), steps: 0, out: [] };
  walk(s, 0, 0, {});
  return s.out;
}

/**
 * Whether `line` starts like a line of this prefix up to its first client-chosen field (%u, %d):
 * the start of a real line (its time and pid are the server's) whose rest a newline in a name cut off.
 */
export function matchHead(prefix: CompiledPrefix, line: string): boolean {
  const first = prefix.tokens.findIndex((t) => 'esc' in t && (t.esc === 'u' || t.esc === 'd'));
  if (first <= 0) return false;
  const s: Search = {
    line,
    tokens: prefix.tokens.slice(0, first),
    headOnly: true,
    limit: Math.min(line.length, MAX_PREFIX),
    steps: 0,
    out: [],
  };
  walk(s, 0, 0, {});
  return s.out.length > 0;
}
