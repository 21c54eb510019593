// The statements of a playbook's `sql` step are templates: `{role}` is the one placeholder, and it
// expands to the role's name as a quoted identifier (ident()), never as raw text. A small lexer
// that reads SQL as PostgreSQL's scanner does (strings, E'' strings, dollar quotes, quoted
// identifiers, nested comments) makes sure each `{role}` stands where an identifier can: not inside
// a string, a quoted identifier or a comment, and not glued to a neighbour that would merge with
// the quotes (`"a"{role}` would read as one identifier). Where the scanner's reading could differ
// (a digit before `e'`, standard_conforming_strings), the lexer takes the reading that keeps a name
// out of code, or refuses the statement. Pure: the playbook schema calls checkTemplate, the sql step expandTemplate.
import { ident } from '../pg/quote.js';

export const PLACEHOLDER = '{role}';

export type TokenKind = 'word' | 'number' | 'param' | 'string' | 'qident' | 'dollar' | 'placeholder' | 'semicolon' | 'other';

export interface Token {
  kind: TokenKind;
  /** Offsets in the text: [start, end). */
  start: number;
  end: number;
  /** A string literal: its body is read with backslash escapes (E'...'). */
  escapes?: boolean;
  /** A string literal with a backslash in it. */
  backslash?: boolean;
}

class TemplateError extends Error {}

const isIdentStart = (c: string | undefined): boolean => c !== undefined && (/[A-Za-z_]/.test(c) || c.charCodeAt(0) >= 0x80);
const isIdentCont = (c: string | undefined): boolean => c !== undefined && (isIdentStart(c) || /[0-9$]/.test(c));
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
/** What may not touch a placeholder: it would merge with the quotes or change how they read (U&"..."). */
const glues = (c: string | undefined): boolean => c !== undefined && (isIdentCont(c) || `'"\`&\\{}`.includes(c));
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

const at = (i: number) => `at character ${i + 1}`;

function inside(text: string, start: number, end: number, what: string): void {
  const p = text.indexOf(PLACEHOLDER, start);
  if (p >= 0 && p + PLACEHOLDER.length <= end)
    throw new TemplateError(
      `${PLACEHOLDER} inside ${what} ${at(p)}: it expands to a quoted identifier, so it may stand only where a name goes, outside quotes and comments`,
    );
}

/** The end of a quoted body that starts at `i` (after the opening quote): `q` doubled is one, `\` escapes with E''. */
function quotedEnd(text: string, i: number, q: string, escapes: boolean, what: string, open: number): number {
  for (let j = i; j < text.length; j++) {
    const c = text[j];
    if (escapes && c === '\\') j++;
    else if (c === q) {
      if (text[j + 1] !== q) return j + 1;
      j++;
    }
  }
  throw new TemplateError(`unterminated ${what} ${at(open)}`);
}

/** The end of a comment starting at `i`: `--` to the end of the line, or a block comment, nested as PostgreSQL nests them. */
function commentEnd(text: string, i: number): number {
  if (text.startsWith('--', i)) {
    // PostgreSQL ends it at a carriage return too: a comment read to the \n would hide a quote after a \r
    const nl = text.slice(i).search(/[\n\r]/);
    return nl < 0 ? text.length : i + nl + 1;
  }
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    if (text.startsWith('/*', j)) {
      depth++;
      j++;
    } else if (text.startsWith('*/', j)) {
      depth--;
      j++;
      if (depth === 0) return j + 1;
    }
  }
  throw new TemplateError(`unterminated /* comment ${at(i)}`);
}

/** A string (or quoted identifier) token at `start`, whose opening quote is at `quote`. */
function quoted(text: string, start: number, quote: number, escapes: boolean): Token {
  const q = text[quote]!;
  const what = q === '"' ? 'quoted identifier' : escapes ? "E'' string literal" : 'string literal';
  const end = quotedEnd(text, quote + 1, q, escapes, what, start);
  inside(text, start, end, `${escapes ? 'an' : 'a'} ${what}`);
  const kind = q === '"' ? 'qident' : 'string';
  return kind === 'string' ? { kind, start, end, escapes, backslash: text.slice(quote, end).includes('\\') } : { kind, start, end };
}

/** A word (keyword or identifier), or the string it prefixes: E'', B'', X'', N'', U&'' and U&"". */
function word(text: string, i: number): Token {
  let j = i + 1;
  while (isIdentCont(text[j])) j++;
  const w = text.slice(i, j);
  if (w.length === 1 && text[j] === "'") return quoted(text, i, j, /[eE]/.test(w));
  if (/^[uU]$/.test(w) && text[j] === '&' && (text[j + 1] === "'" || text[j + 1] === '"')) return quoted(text, i, j + 1, false);
  return { kind: 'word', start: i, end: j };
}

function dollar(text: string, i: number): Token {
  DOLLAR_TAG.lastIndex = i;
  const m = DOLLAR_TAG.exec(text);
  if (m) {
    const close = text.indexOf(m[0], i + m[0].length);
    if (close < 0) throw new TemplateError(`unterminated dollar-quoted string ${at(i)}`);
    const end = close + m[0].length;
    inside(text, i, end, 'a dollar-quoted string');
    return { kind: 'dollar', start: i, end };
  }
  let j = i + 1;
  while (isDigit(text[j])) j++;
  return { kind: j > i + 1 ? 'param' : 'other', start: i, end: j };
}

function placeholder(text: string, i: number): Token {
  const end = i + PLACEHOLDER.length;
  const before = text[i - 1];
  const after = text[end];
  if (glues(before) || glues(after)) {
    const c = glues(before) ? before! : after!;
    throw new TemplateError(
      `${PLACEHOLDER} ${at(i)} is glued to ${JSON.stringify(c)}: it expands to a whole quoted identifier, so put it where a name stands on its own (a space, a comma, a dot or a parenthesis beside it)`,
    );
  }
  return { kind: 'placeholder', start: i, end };
}

/** The next token at `i` (whitespace and comments already skipped). */
function token(text: string, i: number): Token {
  const c = text[i]!;
  if (c === '\0') throw new TemplateError(`a NUL byte ${at(i)}`);
  if (text.startsWith(PLACEHOLDER, i)) return placeholder(text, i);
  if (c === '{' || c === '}')
    throw new TemplateError(`${JSON.stringify(c)} outside quotes ${at(i)}: ${PLACEHOLDER} is the only placeholder (lower case, no spaces)`);
  if (c === "'" || c === '"') return quoted(text, i, i, false);
  if (c === '$') return dollar(text, i);
  if (c === ';') return { kind: 'semicolon', start: i, end: i + 1 };
  if (isIdentStart(c)) return word(text, i);
  if (isDigit(c)) {
    // digits only: a letter after them starts a word, as PostgreSQL 14 reads `1e'...'` (an E'' string)
    let j = i + 1;
    while (isDigit(text[j]) || text[j] === '.') j++;
    return { kind: 'number', start: i, end: j };
  }
  return { kind: 'other', start: i, end: i + 1 };
}

/** The tokens of one statement's text (comments and whitespace dropped); throws TemplateError. */
function scan(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    if (' \t\n\r\f\v'.includes(text[i]!))
      i++; // PostgreSQL's whitespace: U+00A0 and the like are identifier characters
    else if (text.startsWith('--', i) || text.startsWith('/*', i)) {
      const end = commentEnd(text, i);
      inside(text, i, end, 'a comment');
      i = end;
    } else {
      const t = token(text, i);
      out.push(t);
      i = t.end;
    }
  }
  return out;
}

const NOT_HERE = new Set(['BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT', 'RELEASE', 'SET', 'RESET', 'DISCARD']);

/** The statement's shape: one statement, not empty, not transaction control or a session setting. */
function checkShape(text: string, tokens: Token[]): void {
  const semi = tokens.findIndex((t) => t.kind === 'semicolon');
  if (semi === 0 || tokens.length === 0) throw new TemplateError('an empty statement');
  if (semi >= 0 && semi < tokens.length - 1)
    throw new TemplateError(
      `more than one statement (a ";" ${at(tokens[semi]!.start)} with more after it): give each statement its own entry in the list`,
    );
  const words = tokens.slice(0, 2).map((t) => (t.kind === 'word' ? text.slice(t.start, t.end).toUpperCase() : ''));
  const first = words[0]!;
  if (NOT_HERE.has(first) && !((first === 'COMMIT' || first === 'ROLLBACK') && words[1] === 'PREPARED'))
    throw new TemplateError(
      `${first} here would change the step's session under its other statements: each statement runs and commits on its own; transaction control and session settings (BEGIN, COMMIT, SET, RESET, DISCARD, ...) are refused`,
    );
  if (first === 'PREPARE' && words[1] === 'TRANSACTION')
    throw new TemplateError('PREPARE TRANSACTION: each statement runs and commits on its own');
}

/** The tokens of a valid template (exported for tests), or the problem with it. */
export function lexTemplate(text: string): Token[] | string {
  try {
    const tokens = scan(text);
    checkShape(text, tokens);
    if (tokens.some((t) => t.kind === 'placeholder')) {
      const b = tokens.find((t) => t.backslash);
      if (b)
        throw new TemplateError(
          `a backslash in a string literal ${at(b.start)}, in a statement with ${PLACEHOLDER}: whether it escapes the closing quote depends on standard_conforming_strings, which a database's owner can turn off for every session in that database; write the text in a dollar-quoted string ($$...$$), which reads the same either way`,
        );
    }
    return tokens;
  } catch (err) {
    if (err instanceof TemplateError) return err.message;
    throw err;
  }
}

/** The problem with a statement template, or null when it is valid. */
export function checkTemplate(text: string): string | null {
  const r = lexTemplate(text);
  return typeof r === 'string' ? r : null;
}

/** The statement for `role`: every `{role}` replaced by ident(role), in one pass; throws on an invalid template. */
export function expandTemplate(text: string, role: string): string {
  const tokens = lexTemplate(text);
  if (typeof tokens === 'string') throw new Error(`invalid sql step statement: ${tokens}`);
  const name = ident(role);
  let out = '';
  let from = 0;
  for (const t of tokens)
    if (t.kind === 'placeholder') {
      out += text.slice(from, t.start) + name;
      from = t.end;
    }
  return out + text.slice(from);
}

/** The statement has a `{role}` (runs with the role's name) rather than the same text for every role. */
export function usesRole(text: string): boolean {
  const tokens = lexTemplate(text);
  return typeof tokens !== 'string' && tokens.some((t) => t.kind === 'placeholder');
}
