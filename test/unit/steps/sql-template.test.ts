// The `sql` step's statement templates: `{role}` expands to a quoted identifier in one pass, and
// only where PostgreSQL's scanner reads code: never inside a string, a quoted identifier or a
// comment, never glued to a neighbour. Hostile role names stay one identifier.
import { describe, expect, it } from 'vitest';
import { ident } from '../../../src/pg/quote.js';
import { checkTemplate, expandTemplate, lexTemplate, usesRole, type Token } from '../../../src/playbook/sql-template.js';

const HOSTILE = [
  "x'; DROP TABLE t; --",
  "Robert'); DROP TABLE students;--",
  'a"b',
  '"',
  '""; DROP ROLE postgres; --',
  '$$',
  '$x$; DROP TABLE t; $x$',
  '*/ DROP TABLE t; /*',
  '/*',
  '-- ',
  '\\',
  "\\'",
  'two words',
  'line\nbreak',
  'carriage\rreturn',
  ';',
  "E'",
  'U&"',
  'Ünïcødé ✓',
  '}{',
];

const VALID = [
  'REVOKE ALL ON ALL TABLES IN SCHEMA app FROM {role}',
  'REVOKE ALL ON ALL TABLES IN SCHEMA app FROM {role};',
  'GRANT SELECT ON app.t TO {role};  -- back as it was',
  'ALTER TABLE app.t OWNER TO {role}',
  'DROP SCHEMA IF EXISTS {role} CASCADE',
  'REVOKE CONNECT ON DATABASE app FROM {role},{role}',
  'SELECT app.{role}',
  "COMMENT ON ROLE {role} IS 'revoked by {pgrevoke}: it''s gone'",
  "COMMENT ON ROLE {role} IS $$it's {done}$$",
  'COMMENT ON ROLE {role} IS $tag$ $$ \' " -- /* $tag$',
  "COMMENT ON ROLE {role} IS E'it''s'",
  '/* before */ REVOKE USAGE ON SCHEMA app FROM {role} /* nested /* */ */',
  'REVOKE ALL\n  ON ALL SEQUENCES IN SCHEMA app\n  FROM {role}\n',
  'ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA app REVOKE ALL ON TABLES FROM PUBLIC',
  'REVOKE pg_read_all_data FROM {role}',
  'SELECT ({role})',
];

/** The tokens of a text, as kind and exact source. */
function shape(text: string): { kind: Token['kind']; text: string }[] {
  const tokens = lexTemplate(text);
  if (typeof tokens === 'string') throw new Error(tokens);
  return tokens.map((t) => ({ kind: t.kind, text: text.slice(t.start, t.end) }));
}

describe('checkTemplate accepts', () => {
  it.each(VALID)('%s', (t) => {
    expect(checkTemplate(t)).toBeNull();
  });

  it.each([
    'ANALYZE app.t',
    'DO $$BEGIN PERFORM 1; PERFORM 2; END$$',
    "SELECT 'a\\b'",
    "COMMIT PREPARED 'x'",
    "ROLLBACK PREPARED 'x'",
    'SELECT $1',
    'SELECT a$b$c FROM t',
    "SELECT B'0101', X'1F', N'n', U&'d\\0061t\\+000061'",
  ])('a statement without {role}: %s', (t) => {
    expect(checkTemplate(t)).toBeNull();
    expect(usesRole(t)).toBe(false);
  });
});

describe('checkTemplate refuses {role} where it would not be code', () => {
  it.each([
    ["COMMENT ON ROLE x IS '{role}'", /inside a string literal at character 23/],
    ["COMMENT ON ROLE x IS 'it''s {role}'", /inside a string literal/],
    ["COMMENT ON ROLE x IS E'{role}'", /inside an E'' string literal/],
    ["COMMENT ON ROLE x IS e'x\\' {role} '", /inside an E'' string literal/],
    ["COMMENT ON ROLE x IS N'{role}'", /inside a string literal/],
    ['COMMENT ON ROLE x IS $${role}$$', /inside a dollar-quoted string/],
    ['COMMENT ON ROLE x IS $t$ $$ {role} $$ $t$', /inside a dollar-quoted string/],
    ['GRANT x TO "{role}"', /inside a quoted identifier/],
    ['GRANT x TO U&"{role}"', /inside a quoted identifier/],
    ['GRANT x TO y -- {role}', /inside a comment/],
    ['GRANT x TO y /* {role} */', /inside a comment/],
    ['GRANT x TO y /* /* */ {role} */', /inside a comment/],
    // PostgreSQL 14 reads 1e'...' as 1 and an E'' string: \' does not end it
    ["SELECT 1e'\\' , {role} , '", /inside an E'' string literal/],
    // a -- comment ends at a carriage return: the quote after it opens a string
    ["SELECT 1 -- a\r'\n, {role} -- '", /inside a string literal/],
  ])('%j', (t, msg) => {
    expect(checkTemplate(t)).toMatch(msg);
  });

  it.each([
    ['GRANT x TO app_{role}', '_'],
    ['GRANT x TO {role}_app', '_'],
    ['GRANT x TO {role}1', '1'],
    ['GRANT x TO x{role}', 'x'],
    ['GRANT x TO "a"{role}', '"'],
    ['GRANT x TO {role}"a"', '"'],
    ["SELECT 'a'{role}", "'"],
    ['GRANT x TO U&{role}', '&'],
    ['GRANT x TO {role}{role}', '{'],
    ['GRANT x TO ${role}', '$'],
    ['GRANT x TO {role}$', '$'],
    ['GRANT x TO \\{role}', '\\'],
    ['GRANT x TO é{role}', 'é'],
    ['GRANT x TO \u00a0{role}', '\u00a0'],
  ])('glued: %j', (t, c) => {
    expect(checkTemplate(t)).toContain(`is glued to ${JSON.stringify(c)}`);
  });

  it('a backslash in any string of a statement with {role}: standard_conforming_strings decides where it ends', () => {
    expect(checkTemplate("COMMENT ON ROLE {role} IS 'a\\b'")).toMatch(/backslash in a string literal at character 27.*dollar-quoted/);
    expect(checkTemplate("COMMENT ON ROLE {role} IS E'a\\\\b'")).toMatch(/backslash/);
    expect(checkTemplate("SELECT E'a'\n'\\' , {role} , 'x'")).toMatch(/backslash/);
    expect(checkTemplate('COMMENT ON ROLE {role} IS $$a\\b$$')).toBeNull();
  });
});

describe('checkTemplate refuses', () => {
  it.each([
    ['GRANT x TO {ROLE}', /"\{" outside quotes at character 12: \{role\} is the only placeholder/],
    ['GRANT x TO {user}', /only placeholder/],
    ['GRANT x TO { role }', /only placeholder/],
    ['GRANT x TO y}', /"\}" outside quotes/],
  ])('another placeholder or a stray brace: %j', (t, msg) => {
    expect(checkTemplate(t)).toMatch(msg);
  });

  it.each([
    'REVOKE ALL ON t FROM {role}; GRANT SELECT ON t TO {role}',
    'REVOKE ALL ON t FROM {role};;',
    'SELECT 1; -- a comment\nSELECT 2',
  ])('more than one statement: %j', (t) => {
    expect(checkTemplate(t)).toMatch(
      /more than one statement \(a ";" at character \d+ with more after it\): give each statement its own entry/,
    );
  });

  it.each(['', '   ', '-- nothing', '/* nothing */', ';', ' ; '])('an empty statement: %j', (t) => {
    expect(checkTemplate(t)).toBe('an empty statement');
  });

  it.each([
    ["SELECT 'abc", /unterminated string literal at character 8/],
    ["SELECT E'abc\\'", /unterminated E'' string literal/],
    ['SELECT "abc', /unterminated quoted identifier/],
    ['SELECT $$abc', /unterminated dollar-quoted string at character 8/],
    ['SELECT $a$abc$b$', /unterminated dollar-quoted string/],
    ['SELECT 1 /* abc /* */', /unterminated \/\* comment at character 10/],
  ])('unterminated: %j', (t, msg) => {
    expect(checkTemplate(t)).toMatch(msg);
  });

  it.each(['BEGIN', 'begin transaction', 'START TRANSACTION', 'COMMIT', 'END', 'ROLLBACK', 'ABORT', 'SAVEPOINT s', 'RELEASE s'])(
    'transaction control: %s',
    (t) => {
      expect(checkTemplate(t)).toMatch(/would change the step's session under its other statements/);
    },
  );

  it.each([
    'SET ROLE {role}',
    'SET search_path = app',
    'RESET ALL',
    'RESET ROLE',
    'DISCARD ALL',
    '/* c */ set session authorization {role}',
  ])('session settings: %s', (t) => {
    expect(checkTemplate(t)).toMatch(/session settings/);
  });

  it('PREPARE TRANSACTION', () => {
    expect(checkTemplate("PREPARE TRANSACTION 'x'")).toMatch(/PREPARE TRANSACTION/);
    expect(checkTemplate('PREPARE q AS SELECT 1')).toBeNull();
  });

  it('a NUL byte', () => {
    expect(checkTemplate('GRANT x TO {role}\0')).toMatch(/NUL byte/);
  });
});

describe('expandTemplate', () => {
  it('puts the role in as a quoted identifier, every {role}, nothing else', () => {
    expect(expandTemplate('REVOKE ALL ON ALL TABLES IN SCHEMA app FROM {role}', 'mallory')).toBe(
      'REVOKE ALL ON ALL TABLES IN SCHEMA app FROM "mallory"',
    );
    expect(expandTemplate("COMMENT ON ROLE {role} IS '{x} {y}'", 'Ops "Lead"')).toBe(`COMMENT ON ROLE "Ops ""Lead""" IS '{x} {y}'`);
    expect(expandTemplate('ANALYZE app.t', 'anyone')).toBe('ANALYZE app.t');
  });

  it('in one pass: a role named {role} is not expanded again', () => {
    expect(expandTemplate('GRANT x TO {role}, {role}', '{role}')).toBe('GRANT x TO "{role}", "{role}"');
  });

  it.each(HOSTILE)('a hostile name stays one identifier: %j', (name) => {
    const out = expandTemplate('REVOKE ALL ON ALL TABLES IN SCHEMA app FROM {role}', name);
    expect(out).toBe(`REVOKE ALL ON ALL TABLES IN SCHEMA app FROM ${ident(name)}`);
    const tokens = shape(out);
    expect(tokens.at(-1)).toEqual({ kind: 'qident', text: ident(name) });
    expect(tokens).toHaveLength(10);
  });

  it('every valid template with every hostile name: the same tokens, each {role} one quoted identifier', () => {
    for (const t of VALID)
      for (const name of HOSTILE) {
        const want = shape(t).map((x) => (x.kind === 'placeholder' ? { kind: 'qident', text: ident(name) } : x));
        expect(shape(expandTemplate(t, name)), `${t} / ${JSON.stringify(name)}`).toEqual(want);
      }
  });

  it('refuses an invalid template and a name with a NUL byte', () => {
    expect(() => expandTemplate("SELECT '{role}'", 'x')).toThrow(/invalid sql step statement: \{role\} inside a string literal/);
    expect(() => expandTemplate('GRANT x TO {role}', 'a\0b')).toThrow(/NUL/);
  });
});
