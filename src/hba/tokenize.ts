// pg_hba.conf as PostgreSQL tokenizes it (hba.c: next_token, next_field_expand, tokenize_auth_file,
// tokenize_expand_file, tokenize_include_file), keeping whether each token was quoted: the view
// pg_hba_file_rules drops the quotes, and a quoted "all" is a name, not the keyword.
// Pure: the files are handed in; what is still needed is returned, so the caller can load it and
// parse again (includes are only known once their including line is read).
import path from 'node:path';

export interface HbaToken {
  text: string;
  /** A double quote preceded the first character (hba.c initial_quote): never a keyword, +group or @file. */
  quoted: boolean;
}

export interface TokenizedLine {
  /** Absolute path of the file the line is in (an include's own file). */
  fileName: string;
  /** First physical line of the record (continuation lines count, as in hba.c). */
  lineNumber: number;
  fields: HbaToken[][];
  error: string | null;
}

export interface HbaFileSet {
  /** Absolute path -> content; null: the file does not exist or could not be read. */
  files: ReadonlyMap<string, string | null>;
  /** Absolute directory -> the names of its regular files; null: not readable. */
  dirs: ReadonlyMap<string, readonly string[] | null>;
}

export interface TokenizeResult {
  lines: TokenizedLine[];
  /** Files and directories the parse needs but were not in the set: load them and parse again. */
  needFiles: string[];
  needDirs: string[];
}

export interface TokenizeOptions {
  /** include / include_if_exists / include_dir directives exist from PostgreSQL 16. */
  includes: boolean;
}

/** CONF_FILE_MAX_DEPTH in guc.h. */
const MAX_DEPTH = 10;

/** pg_isblank(): space, tab and carriage return only. */
const isBlank = (c: string) => c === ' ' || c === '\t' || c === '\r';

/** AbsoluteConfigLocation(): relative names are relative to the directory of the including file. */
export function resolveIncluded(name: string, including: string): string {
  return path.posix.normalize(path.posix.isAbsolute(name) ? name : path.posix.join(path.posix.dirname(including), name));
}

/** next_token(): one token from `line` at `pos`; null at end of line or at a comment. */
function nextToken(line: string, pos: number): { token: HbaToken | null; comma: boolean; pos: number } {
  let i = pos;
  while (i < line.length && (isBlank(line[i]!) || line[i] === ',')) i++;
  let buf = '';
  let inQuote = false;
  let wasQuote = false;
  let sawQuote = false;
  let initialQuote = false;
  let comma = false;
  while (i < line.length && (!isBlank(line[i]!) || inQuote)) {
    const c = line[i]!;
    if (c === '#' && !inQuote) {
      i = line.length; // a comment runs to the end of the (joined) line
      break;
    }
    if (c === ',' && !inQuote) {
      comma = true;
      i++;
      break;
    }
    if (c !== '"' || wasQuote) buf += c;
    // a literal double quote is two double quotes
    wasQuote = inQuote && c === '"' ? !wasQuote : false;
    if (c === '"') {
      inQuote = !inQuote;
      sawQuote = true;
      if (buf === '') initialQuote = true;
    }
    i++;
  }
  const token = sawQuote || buf !== '' ? { text: buf, quoted: initialQuote } : null;
  return { token, comma, pos: i };
}

/**
 * pg_get_line_append(): fgets() then strlen(), so a NUL byte drops the rest of its physical line,
 * newline included, and reading goes on with the next physical line (joined onto this one).
 * Returns the text read and the next position, or null at end of file with nothing read.
 * (fgets' buffer boundaries on lines over ~1 kB with a NUL are not modelled.)
 */
function getLine(content: string, pos: number): { text: string; pos: number } | null {
  let text = '';
  while (pos < content.length) {
    const nl = content.indexOf('\n', pos);
    const end = nl === -1 ? content.length : nl + 1;
    const chunk = content.slice(pos, end);
    pos = end;
    const nul = chunk.indexOf('\0');
    text += nul === -1 ? chunk : chunk.slice(0, nul);
    if (text.endsWith('\n')) return { text, pos };
  }
  return text === '' ? null : { text, pos };
}

/**
 * Records as tokenize_auth_file() collects them: a trailing backslash continues the record
 * (PostgreSQL 14+), and the line number advances by one plus the continuations (lines joined by a
 * NUL byte do not count, so later lines are numbered as the server numbers them).
 */
function records(content: string): { text: string; lineNumber: number }[] {
  const out: { text: string; lineNumber: number }[] = [];
  let n = 1;
  let pos = 0;
  while (pos < content.length) {
    let buf = '';
    let lastBackslash = 0;
    let continuations = 0;
    for (let l = getLine(content, pos); l !== null; l = getLine(content, pos)) {
      pos = l.pos;
      buf = (buf + l.text).replace(/[\r\n]+$/, ''); // pg_strip_crlf
      // the backslash must be past the previous continuation point (hba.c last_backslash_buflen)
      if (buf.length > lastBackslash && buf.endsWith('\\')) {
        buf = buf.slice(0, -1);
        lastBackslash = buf.length;
        continuations++;
        continue;
      }
      break;
    }
    out.push({ text: buf, lineNumber: n });
    n += continuations + 1;
  }
  return out;
}

interface State {
  set: HbaFileSet;
  opts: TokenizeOptions;
  needFiles: Set<string>;
  needDirs: Set<string>;
}

/** tokenize_expand_file(): an @file's tokens, flattened into the field. */
function expandAtFile(st: State, name: string, including: string, depth: number): { tokens: HbaToken[]; error: string | null } {
  const full = resolveIncluded(name, including);
  if (depth > MAX_DEPTH) return { tokens: [], error: `could not open file "${full}": maximum nesting depth exceeded` };
  if (!st.set.files.has(full)) {
    st.needFiles.add(full);
    return { tokens: [], error: null };
  }
  const content = st.set.files.get(full);
  if (content === null || content === undefined)
    return { tokens: [], error: `could not open secondary authentication file "@${name}" as "${full}"` };
  const tokens: HbaToken[] = [];
  for (const line of tokenizeFile(st, full, content, depth + 1)) {
    if (line.error) return { tokens, error: line.error };
    for (const field of line.fields) tokens.push(...field);
  }
  return { tokens, error: null };
}

/** next_field_expand(): a comma list, with unquoted @file tokens expanded. */
function nextField(st: State, fileName: string, line: string, pos: number, depth: number) {
  const tokens: HbaToken[] = [];
  let error: string | null = null;
  for (;;) {
    const t = nextToken(line, pos);
    pos = t.pos;
    if (!t.token) break;
    if (!t.token.quoted && t.token.text.startsWith('@') && t.token.text.length > 1) {
      const inc = expandAtFile(st, t.token.text.slice(1), fileName, depth);
      tokens.push(...inc.tokens);
      error = inc.error;
    } else tokens.push(t.token);
    if (!t.comma || error) break;
  }
  return { tokens, pos, error };
}

function includeFile(st: State, name: string, including: string, depth: number, missingOk: boolean): TokenizedLine[] | string {
  const full = resolveIncluded(name, including);
  if (depth > MAX_DEPTH) return `could not open file "${full}": maximum nesting depth exceeded`;
  if (!st.set.files.has(full)) {
    st.needFiles.add(full);
    return [];
  }
  const content = st.set.files.get(full);
  if (content === null || content === undefined) return missingOk ? [] : `could not open file "${full}"`;
  return tokenizeFile(st, full, content, depth);
}

/** GetConfFilesInDir(): the directory's files ending in .conf, not hidden, in strcmp order. */
function includeDir(st: State, name: string, including: string, depth: number): TokenizedLine[] | string {
  const dir = resolveIncluded(name, including);
  if (!st.set.dirs.has(dir)) {
    st.needDirs.add(dir);
    return [];
  }
  const entries = st.set.dirs.get(dir);
  if (!entries) return `could not open directory "${dir}"`;
  const names = entries.filter((n) => n.endsWith('.conf') && !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: TokenizedLine[] = [];
  for (const n of names) {
    const r = includeFile(st, path.posix.join(dir, n), including, depth, false);
    if (typeof r === 'string') return r;
    out.push(...r);
  }
  return out;
}

function tokenizeFile(st: State, fileName: string, content: string, depth: number): TokenizedLine[] {
  const out: TokenizedLine[] = [];
  for (const rec of records(content)) {
    const fields: HbaToken[][] = [];
    let error: string | null = null;
    let pos = 0;
    while (pos < rec.text.length && error === null) {
      const f = nextField(st, fileName, rec.text, pos, depth);
      if (f.pos === pos && !f.tokens.length) break;
      pos = f.pos;
      error = f.error;
      if (f.tokens.length) fields.push(f.tokens);
    }
    if (!fields.length && error === null) continue;
    // include directives: a two-field line whose first token is the word (compared without regard to quotes, as hba.c does)
    if (st.opts.includes && error === null && fields.length === 2) {
      const word = fields[0]![0]!.text;
      const target = fields[1]![0]!.text;
      let included: TokenizedLine[] | string | null = null;
      if (word === 'include') included = includeFile(st, target, fileName, depth + 1, false);
      else if (word === 'include_if_exists') included = includeFile(st, target, fileName, depth + 1, true);
      else if (word === 'include_dir') included = includeDir(st, target, fileName, depth + 1);
      if (typeof included === 'string') error = included;
      else if (included !== null) {
        out.push(...included);
        continue;
      }
    }
    out.push({ fileName, lineNumber: rec.lineNumber, fields, error });
  }
  return out;
}

/** Tokenize the main file and whatever it includes, as far as `set` holds them. */
export function tokenizeHba(mainFile: string, set: HbaFileSet, opts: TokenizeOptions): TokenizeResult {
  const st: State = { set, opts, needFiles: new Set(), needDirs: new Set() };
  const content = set.files.get(mainFile);
  if (content === undefined) return { lines: [], needFiles: [mainFile], needDirs: [] };
  const lines = content === null ? [] : tokenizeFile(st, mainFile, content, 0);
  return { lines, needFiles: [...st.needFiles], needDirs: [...st.needDirs] };
}
