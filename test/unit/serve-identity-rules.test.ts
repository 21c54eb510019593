// identities: rules (src/serve/identity.ts): provider names -> PostgreSQL roles. Exact rules and
// patterns, first match wins, case-insensitive names (RFC 7643: userName is caseExact false), and
// the provider's input treated as hostile: what a capture makes is a checked role name or nothing.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  checkIdentityRules,
  IdentityRuleSchema,
  mapIdentity,
  MAX_MATCH_INPUT,
  MATCH_TIME_LIMIT_MS,
  rolesFor,
  type IdentityRule,
} from '../../src/serve/identity.js';
import { parseYamlWith } from '../../src/util/yaml.js';
import { usage } from '../helpers/errors.js';

const ConfigSchema = z.strictObject({ identities: z.array(IdentityRuleSchema) });

/** The rules as E's config loader reads them: YAML, the schema, then checkIdentityRules. */
function load(yaml: string): IdentityRule[] {
  return parseYamlWith(yaml, 'serve.yaml', ConfigSchema, {
    what: 'serve config',
    hint: 'see docs/serve.md',
    check: (d) => checkIdentityRules(d.identities),
  }).identities;
}

const ISSUE_RULES = `identities:
  - { user: alice@example.com, github: alice-gh, roles: [alice, alice_admin] }
  - { user_pattern: '^(?<name>[a-z0-9_]+)@example\\.com$', roles: ['{name}'] }
`;

describe('rolesFor: the issue example', () => {
  const rules = load(ISSUE_RULES);

  it('an exact rule maps its user or its GitHub login to its roles', () => {
    expect(rolesFor(rules, { user: 'alice@example.com' })).toEqual(['alice', 'alice_admin']);
    expect(rolesFor(rules, { github: 'alice-gh' })).toEqual(['alice', 'alice_admin']);
  });

  it('compares names case-insensitively, as SCIM userName and GitHub logins are', () => {
    expect(rolesFor(rules, { user: 'Alice@Example.COM' })).toEqual(['alice', 'alice_admin']);
    expect(rolesFor(rules, { github: 'ALICE-GH' })).toEqual(['alice', 'alice_admin']);
  });

  it('a pattern fills {name} from its named group; first match wins (alice is the exact rule, not the pattern)', () => {
    expect(rolesFor(rules, { user: 'bob@example.com' })).toEqual(['bob']);
    expect(mapIdentity(rules, { user: 'alice@example.com' })).toEqual({ mapped: true, roles: ['alice', 'alice_admin'], rule: 0 });
    expect(mapIdentity(rules, { user: 'bob@example.com' })).toEqual({ mapped: true, roles: ['bob'], rule: 1 });
  });

  it('a pattern matches the lower-cased name, so one person is one role whatever the case sent', () => {
    expect(rolesFor(rules, { user: 'Bob@EXAMPLE.com' })).toEqual(['bob']);
  });

  it('unmapped: no rule matches, another domain, a GitHub login no exact rule names, nothing given', () => {
    for (const identity of [{ user: 'carol@other.org' }, { github: 'bob-gh' }, {}])
      expect(mapIdentity(rules, identity)).toEqual({ mapped: false, roles: null, rule: null, reason: 'no identities rule matches' });
  });

  it('the pattern must match the whole name: no match inside a longer one', () => {
    const loose = load(`identities:\n  - { user_pattern: '(?<name>[a-z]+)@example\\.com', roles: ['{name}'] }\n`);
    expect(rolesFor(loose, { user: 'eve@example.com' })).toEqual(['eve']);
    expect(rolesFor(loose, { user: 'eve@example.com.attacker.net' })).toBeNull();
    expect(rolesFor(loose, { user: 'x+eve@example.com' })).toBeNull();
  });
});

describe('rolesFor: hostile names from the provider', () => {
  // [^@] takes anything, control characters included: the pattern an admin writes for "any local part"
  const wide = load(`identities:
  - { user_pattern: '^(?<name>[^@]+)@example\\.com$', roles: ['{name}', 'ro_{name}'] }
`);

  it('a capture that would make a role PostgreSQL cuts (over 63 bytes) is unmapped, not cut', () => {
    const m = mapIdentity(wide, { user: `${'a'.repeat(61)}@example.com` });
    // 'a'*61 is fine, 'ro_' + 61 = 64 bytes is not: the whole rule is refused, not half of it
    expect(m.mapped).toBe(false);
    expect(m).toMatchObject({
      rule: 0,
      reason: expect.stringMatching(/"ro_\{name\}" made role name "ro_a{61}", refused: it is 64 bytes long/),
    });
    expect(rolesFor(wide, { user: `${'a'.repeat(60)}@example.com` })).toEqual(['a'.repeat(60), `ro_${'a'.repeat(60)}`]);
  });

  it('counts bytes: 32 two-byte characters are 64 bytes', () => {
    expect(mapIdentity(wide, { user: `${'é'.repeat(32)}@example.com` })).toMatchObject({
      mapped: false,
      reason: expect.stringMatching(/64 bytes/),
    });
  });

  it('NUL, newlines, escape sequences and bidirectional overrides in a capture are unmapped', () => {
    for (const bad of ['ev\0e', 'ev\ne', 'ev\u001b[2Je', 'ev\u202ee', 'ev\u007fe'])
      expect(mapIdentity(wide, { user: `${bad}@example.com` }), JSON.stringify(bad)).toMatchObject({ mapped: false, roles: null, rule: 0 });
  });

  it("a capture naming one of PostgreSQL's reserved pg_ roles is unmapped; a literal one is a config error", () => {
    expect(mapIdentity(wide, { user: 'pg_signal_backend@example.com' })).toMatchObject({
      mapped: false,
      reason: expect.stringMatching(/"\{name\}" made role name "pg_signal_backend", refused: pg_ names are reserved/),
    });
    expect(() => load(`identities:\n  - { user: a@x, roles: [pg_monitor] }\n`)).toThrow(
      /roles\[0\]: role name "pg_monitor" refused: pg_ names are reserved/,
    );
  });

  it('quotes and spaces are a role name PostgreSQL takes quoted: passed on as written (the quoting helper quotes them)', () => {
    expect(rolesFor(wide, { user: `o'neil "x"@example.com` })).toEqual([`o'neil "x"`, `ro_o'neil "x"`]);
  });

  it('a template whose group did not take part in the match, or matched empty, is unmapped, never an empty role', () => {
    const optional = load(`identities:
  - { user_pattern: '^(?:(?<team>[a-z]+)\\.)?(?<name>[a-z]*)@example\\.com$', roles: ['{team}_{name}'] }
`);
    expect(mapIdentity(optional, { user: 'bob@example.com' })).toMatchObject({
      mapped: false,
      rule: 0,
      reason: 'group team matched nothing, so "{team}_{name}" names no role',
    });
    expect(mapIdentity(optional, { user: 'ops.@example.com' })).toMatchObject({
      mapped: false,
      reason: expect.stringMatching(/group name matched nothing/),
    });
    expect(rolesFor(optional, { user: 'ops.bob@example.com' })).toEqual(['ops_bob']);
  });

  it('the first matching rule decides even when its roles are refused: a broader later rule is no fallback', () => {
    const rules = load(`identities:
  - { user_pattern: '^(?<name>.+)@example\\.com$', roles: ['{name}'] }
  - { user_pattern: '^.*$', roles: [nobody_special] }
`);
    expect(mapIdentity(rules, { user: `${'x'.repeat(70)}@example.com` })).toMatchObject({ mapped: false, rule: 0 });
    expect(rolesFor(rules, { user: 'someone@else.org' })).toEqual(['nobody_special']);
  });

  it(`a userName over ${MAX_MATCH_INPUT} characters is not matched against a pattern (and not cut to fit)`, () => {
    expect(MAX_MATCH_INPUT).toBe(256);
    const long = `${'a'.repeat(MAX_MATCH_INPUT - '@example.com'.length + 1)}@example.com`;
    expect(mapIdentity(wide, { user: long })).toEqual({
      mapped: false,
      roles: null,
      rule: 0,
      reason: `userName is 257 characters; patterns are matched against at most 256`,
    });
    // an exact rule before it still compares the whole name
    const exact = load(`identities:\n  - { user: '${long}', roles: [longname] }\n  - { user_pattern: '^.*$', roles: [x] }\n`);
    expect(rolesFor(exact, { user: long })).toEqual(['longname']);
  });

  it('a catastrophically backtracking pattern is stopped and the name unmapped, not the service hung', () => {
    const evil = load(`identities:\n  - { user_pattern: '^(a+)+$', roles: [a] }\n`);
    expect(rolesFor(evil, { user: 'aaaa' })).toEqual(['a']);
    // 2^40 paths before it fails: without the limit this call would not return for hours
    expect(mapIdentity(evil, { user: `${'a'.repeat(40)}!` })).toEqual({
      mapped: false,
      roles: null,
      rule: 0,
      reason: `user_pattern ran past ${MATCH_TIME_LIMIT_MS} ms on this userName and was stopped`,
    });
  });

  it('repeated roles are one', () => {
    const rules = load(`identities:\n  - { user_pattern: '^(?<n>[a-z]+)@x$', roles: ['{n}', '{n}', app] }\n`);
    expect(rolesFor(rules, { user: 'bo@x' })).toEqual(['bo', 'app']);
  });
});

describe('identities: config errors, at load, with file, line and field', () => {
  const error = (yaml: string) => usage(() => load(yaml)).message;

  it('an invalid regular expression', () => {
    expect(error(`identities:\n  - { user: a@x, roles: [a] }\n  - { user_pattern: '^(?<name>[a-z+@x$', roles: ['{name}'] }\n`)).toMatch(
      /^invalid serve config serve\.yaml:3: identities\[1\]\.user_pattern: not a valid regular expression: /,
    );
    // a pattern that would close the ^(?:...)$ wrapper and match unanchored is invalid alone
    expect(error(`identities:\n  - { user_pattern: 'a)|(b', roles: [a] }\n`)).toMatch(
      /identities\[0\]\.user_pattern: not a valid regular expression/,
    );
  });

  it('a {group} the pattern does not have, and a bad reference', () => {
    expect(error(`identities:\n  - { user_pattern: '^(?<name>[a-z]+)@x$', roles: [ok, '{nmae}'] }\n`)).toBe(
      'invalid serve config serve.yaml:2: identities[0].roles[1]: "{nmae}": {nmae} is not a named group of user_pattern (it has name)',
    );
    expect(error(`identities:\n  - { user_pattern: '^([a-z]+)@x$', roles: ['{1}'] }\n`)).toMatch(/"\{1\}": \{1\} is not a group name/);
    expect(error(`identities:\n  - { user_pattern: '^[a-z]+@x$', roles: ['{name}'] }\n`)).toMatch(/it has none: write \(\?<name>\.\.\.\)/);
    expect(error(`identities:\n  - { user_pattern: '^(?<a>x)$', roles: ['{a}}'] }\n`)).toMatch(/a brace outside a \{group\} reference/);
  });

  it('templates in an exact rule, and literal roles PostgreSQL would cut or cannot take', () => {
    expect(error(`identities:\n  - { user: a@x, roles: ['{name}'] }\n`)).toMatch(
      /roles\[0\]: "\{name\}": \{group\} templates need a user_pattern: rule/,
    );
    expect(error(`identities:\n  - { user: a@x, roles: ['${'r'.repeat(64)}'] }\n`)).toMatch(
      /roles\[0\]: role name "r{64}" refused: it is 64 bytes long/,
    );
    expect(error(`identities:\n  - { user: a@x, roles: ["a\\0b"] }\n`)).toMatch(/roles\[0\]: .*NUL byte/);
    // the fixed part of a template alone already too long
    expect(error(`identities:\n  - { user_pattern: '^(?<n>.)$', roles: ['${'p'.repeat(63)}{n}'] }\n`)).toMatch(/64 bytes long/);
  });

  it('the rule kinds: both, neither, unknown fields, no roles', () => {
    expect(error(`identities:\n  - { user: a@x, user_pattern: '^a$', roles: [a] }\n`)).toMatch(
      /identities\[0\]\.user_pattern: a rule has user_pattern: or user:\/github: \(exact names\), not both/,
    );
    expect(error(`identities:\n  - { roles: [a] }\n`)).toMatch(/identities\[0\]: a rule needs user:, github: or user_pattern:/);
    expect(error(`identities:\n  - { user: a@x, role: [a], roles: [a] }\n`)).toMatch(/identities\[0\]\.role: unknown field "role"/);
    expect(error(`identities:\n  - { user: a@x, roles: [] }\n`)).toMatch(/identities\[0\]\.roles: a rule needs at least one role/);
  });

  it('a rule an earlier exact rule shadows (first match wins) names both', () => {
    expect(error(`identities:\n  - { user: alice@example.com, roles: [a] }\n  - { user: Alice@Example.com, roles: [b] }\n`)).toBe(
      'invalid serve config serve.yaml:3: identities[1].user: user "Alice@Example.com" is already identities[0]: the first matching rule wins, so this one never applies to it',
    );
    expect(error(`identities:\n  - { github: gh, roles: [a] }\n  - { user: u@x, github: gh, roles: [b] }\n`)).toMatch(
      /identities\[1\]\.github: github "gh" is already identities\[0\]/,
    );
  });

  it('checkIdentityRules alone (no schema) finds the per-rule problems too, under the path it is given', () => {
    const rules = [{ user_pattern: '^(?<n>x)$', roles: ['{m}'] }] as IdentityRule[];
    expect(checkIdentityRules(rules, ['serve', 'identities'])).toEqual({
      path: ['serve', 'identities', 0, 'roles', 0],
      message: '"{m}": {m} is not a named group of user_pattern (it has n)',
    });
    expect(checkIdentityRules(load(ISSUE_RULES))).toBeNull();
  });
});
