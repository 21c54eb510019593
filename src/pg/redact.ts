// Secrets stay out of output at their sources, never by searching finished output for them: an
// operator's password may be one letter or the database's name, and masking every occurrence of it
// turned keys into "sch*****maV*****rsion", `false` into `f*****lse` and "postgres" into "*****".
//   - Connection strings are never echoed whole; a resolver failure inside one does not quote the
//     text after an unquoted password (conninfo.ts), and commander's argv echoes pass redact() (cli.ts).
//   - Error texts from servers, drivers and resolvers pass redact() one message at a time, before the
//     message is put in a document: only a conninfo's password components are masked there.
//   - The rotated password and its SCRAM verifier never enter a string that is output (a Statement's
//     `display` form says '*****'). As a last resort they are also masked inside error messages: they
//     are random and long, so a match is never a coincidence and masking cannot garble other text.
//     The operator's own password is deliberately not registered: it is chosen by a person, and a
//     short or common one would match ordinary words.

const MASK = '*****';

const generated = new Set<string>();

/** The shortest secret registerGenerated takes: below this a random string could match by chance. */
const MIN_GENERATED = 32;

/** Remember a secret pgrevoke generated (random, at least 32 characters) so error messages never carry it. */
export function registerGenerated(secret: string): void {
  if (secret.length < MIN_GENERATED) throw new Error(`registerGenerated: a generated secret has at least ${MIN_GENERATED} characters`);
  generated.add(secret);
}

const URI_PASSWORD = /(postgres(?:ql)?:\/\/[^:/?#@\s]*):([^@/?#\s]*)@/gi;
// a conninfo value as libpq reads it: single-quoted with backslash escapes, or bare up to whitespace
const KV_PASSWORD = /(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|(?:[^\s\\]|\\.)+)/gi;

/**
 * One message (an error's text, a detail, a hint, a server's notice): the password components of
 * any connection string in it masked, and pgrevoke's generated secrets. For single values only:
 * never applied to a whole JSON or text document, whose structure it could not know.
 */
export function redact(text: string): string {
  let out = text.replace(URI_PASSWORD, `$1:${MASK}@`).replace(KV_PASSWORD, `$1${MASK}`);
  for (const s of generated) out = out.split(s).join(MASK);
  return out;
}

// A password literal in SQL: `PASSWORD 'x'` (ALTER/CREATE ROLE), `password 'x'` (user mapping options)
const SQL_PASSWORD = /(\bpassword\s+)(E?'(?:[^'\\]|''|\\.)*')/gi;

/**
 * A session's query text as pgrevoke records it: exact, but for the passwords in it (a role changing
 * its password, a user mapping's options, a subscription's conninfo), which are secrets of their own.
 */
export function queryText(query: string | null): string | null {
  return query === null ? null : redact(query).replace(SQL_PASSWORD, `$1'${MASK}'`);
}
