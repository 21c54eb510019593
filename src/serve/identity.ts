// Who an identity provider's event is about -> the PostgreSQL roles to cut off (issue 17). The
// config's `identities:` rules, tried in file order, the first that matches wins:
//
//   - { user: alice@example.com, github: alice-gh, roles: [alice, alice_admin] }     # exact
//   - { user_pattern: '^(?<name>[a-z0-9_]+)@example\.com$', roles: ['{name}'] }      # pattern
//
// The rules are the admin's; the names they are matched against are the provider's. So every role
// a pattern's capture builds is checked as a role name (role-name.ts: at most 63 bytes, no NUL),
// for characters no real role name holds and for PostgreSQL's reserved pg_ prefix, and any doubt
// is "unmapped" (acknowledged, flagged by the core), never an empty or a cut role name.
//
// Case: SCIM userName is case-insensitive (RFC 7643 section 4.1.1, and "caseExact": false in its
// section 8.7.1 schema), and so are GitHub logins. The same person must map to the same roles
// whatever case the provider sends this time (Entra sends the UPN as typed), so exact rules compare
// case-insensitively and patterns are matched, case-insensitively, against the lower-cased name:
// what a capture puts in a role name is lower case, as PostgreSQL folds unquoted names.
// Without case is not with look-alikes: toLowerCase makes U+212A KELVIN SIGN an ASCII k and
// U+0130 an i with a combining dot, and a case-insensitive Unicode regex takes U+017F LONG S for s
// and U+212A for k. An identity provider keeps such a name apart from the ASCII one, so it must
// not reach the real person's roles (foldName, LOOKALIKE).
import vm from 'node:vm';
import { z } from 'zod';
import { hasUnsafe } from '../util/terminal-safe.js';
import { roleNameProblem } from '../util/role-name.js';
import type { ServeIdentity } from './types.js';
import { fieldName, type YamlPath, type YamlProblem } from '../util/yaml.js';

/**
 * Patterns are matched against at most this many characters; a longer userName is unmapped, never
 * cut (a cut name could match another person). JavaScript regexes backtrack, so a pattern's cost
 * grows with the input, polynomially for `(.*)(.*)@...` and exponentially for `(a+)+`: the cap
 * bounds the first kind, the time limit below the second. 256 is above any real name: an email
 * address is at most 254 characters (RFC 5321's 256-octet path less its angle brackets), a GitHub
 * login 39.
 */
export const MAX_MATCH_INPUT = 256;

/** A match that runs longer than this is stopped (vm's timeout interrupts the regex engine): unmapped. */
export const MATCH_TIME_LIMIT_MS = 250;

// {name}: a named group of the rule's pattern (the characters JavaScript allows in a group name)
const TEMPLATE_REF = /\{([^{}]*)\}/g;
const GROUP_NAME = /^[A-Za-z_$][\w$]*$/;

const Name = z.string().min(1, 'must not be empty');

/** One `identities:` entry. Exactly one of user_pattern, or user and/or github (exact names). */
export const IdentityRuleSchema = z
  .strictObject({
    user: Name.optional(),
    github: Name.optional(),
    user_pattern: Name.optional(),
    roles: z.array(Name).min(1, 'a rule needs at least one role'),
  })
  .superRefine((rule, ctx) => {
    for (const p of ruleProblems(rule)) ctx.addIssue({ code: 'custom', path: [...p.path], message: p.message });
  });

export type IdentityRule = z.output<typeof IdentityRuleSchema>;

/** What a rule list made of an identity: its roles, or why none (for the audit line). */
export type IdentityMapping =
  { mapped: true; roles: string[]; rule: number } | { mapped: false; roles: null; rule: number | null; reason: string };

/** `new RegExp` for a rule's pattern: the whole name must match, case-insensitively, in Unicode mode. */
function compile(pattern: string): RegExp {
  // alone first: `a)|(b` would otherwise close the wrapper and match unanchored
  new RegExp(pattern, 'iu');
  return new RegExp(`^(?:${pattern})$`, 'iu');
}

/** The pattern's named groups: an empty alternative matches '' and lists them all, unset. */
function groupNames(re: RegExp): string[] {
  return Object.keys(new RegExp(`${re.source}|`, re.flags).exec('')?.groups ?? {});
}

/** The problems of one rule, each with its path inside the rule (the schema prefixes the list's). */
function ruleProblems(rule: { user?: string; github?: string; user_pattern?: string; roles: readonly string[] }): YamlProblem[] {
  const exact = rule.user !== undefined || rule.github !== undefined;
  if (rule.user_pattern !== undefined && exact)
    return [{ path: ['user_pattern'], message: 'a rule has user_pattern: or user:/github: (exact names), not both' }];
  if (rule.user_pattern === undefined && !exact) return [{ path: [], message: 'a rule needs user:, github: or user_pattern:' }];
  let groups: string[] = [];
  if (rule.user_pattern !== undefined) {
    try {
      groups = groupNames(compile(rule.user_pattern));
    } catch (err) {
      return [{ path: ['user_pattern'], message: `not a valid regular expression: ${(err as Error).message}` }];
    }
  }
  const problems: YamlProblem[] = [];
  rule.roles.forEach((role, i) => {
    const problem = templateProblem(role, rule.user_pattern === undefined ? null : groups);
    if (problem) problems.push({ path: ['roles', i], message: problem });
  });
  return problems;
}

/** What is wrong with a role template, given the pattern's groups (null: an exact rule, no templates). */
function templateProblem(template: string, groups: readonly string[] | null): string | null {
  const refs = [...template.matchAll(TEMPLATE_REF)].map((m) => m[1]!);
  if (refs.length && groups === null)
    return `"${template}": {group} templates need a user_pattern: rule (exact rules name roles as written)`;
  for (const ref of refs) {
    if (!GROUP_NAME.test(ref)) return `"${template}": {${ref}} is not a group name`;
    if (!groups!.includes(ref))
      return `"${template}": {${ref}} is not a named group of user_pattern (${groups!.length ? `it has ${groups!.join(', ')}` : 'it has none: write (?<name>...)'})`;
  }
  const literal = template.replace(TEMPLATE_REF, '');
  if (/[{}]/.test(literal)) return `"${template}": a brace outside a {group} reference`;
  // the fixed part, with each reference as one character: what every result will at least be
  const shortest = template.replace(TEMPLATE_REF, 'x');
  const problem = roleProblem(shortest);
  return problem === null ? null : `role name "${template}" refused: ${problem}`;
}

/**
 * What makes a role name unusable here: what PostgreSQL would cut or cannot take (role-name.ts),
 * characters no real role name holds (a capture could carry them), and pg_ names, which
 * PostgreSQL reserves for its predefined roles (nobody logs in as one; a capture must not aim a
 * cutoff at pg_signal_backend or pg_monitor).
 */
function roleProblem(role: string): string | null {
  return (
    roleNameProblem(role) ??
    (hasUnsafe(role) ? 'it contains a control or bidirectional character' : null) ??
    (role.startsWith('pg_') ? "pg_ names are reserved for PostgreSQL's predefined roles" : null)
  );
}

/**
 * The config check beyond each rule's own (the schema runs those, and so does this, for a caller
 * without the schema): the first problem, with its path from `base`, or null. A rule that an
 * earlier exact rule shadows entirely is refused: first match wins, so it could never apply.
 */
export function checkIdentityRules(rules: readonly IdentityRule[], base: YamlPath = ['identities']): YamlProblem | null {
  const seen = { user: new Map<string, number>(), github: new Map<string, number>() };
  for (const [i, rule] of rules.entries()) {
    const own = ruleProblems(rule)[0];
    if (own) return { path: [...base, i, ...own.path], message: own.message };
    for (const key of ['user', 'github'] as const) {
      const value = rule[key];
      if (value === undefined) continue;
      const first = seen[key].get(foldName(value));
      // a rule with both names is shadowed only if both are; one repeated name is still an error
      if (first !== undefined)
        return {
          path: [...base, i, key],
          message: `${key} "${value}" is already ${fieldName([...base, first])}: the first matching rule wins, so this one never applies to it`,
        };
      seen[key].set(foldName(value), i);
    }
  }
  return null;
}

// One context for every match: the regex and its input are handed in, the call runs with a timeout.
const matchContext = vm.createContext(Object.create(null));
const matchScript = new vm.Script('re.exec(input)');

/** The pattern's match of `input`, or 'timeout' when it ran past MATCH_TIME_LIMIT_MS. */
function timedMatch(re: RegExp, input: string): RegExpExecArray | null | 'timeout' {
  matchContext.re = re;
  matchContext.input = input;
  try {
    return matchScript.runInContext(matchContext, { timeout: MATCH_TIME_LIMIT_MS }) as RegExpExecArray | null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return 'timeout';
    throw err;
  } finally {
    matchContext.re = undefined;
    matchContext.input = undefined;
  }
}

/** The roles a pattern rule's templates make of a match, or why they cannot be used. */
function fill(templates: readonly string[], groups: Record<string, string | undefined>): string[] | string {
  const roles: string[] = [];
  for (const template of templates) {
    let missing: string | null = null;
    const role = template.replace(TEMPLATE_REF, (_, name: string) => {
      const value = groups[name];
      if (value === undefined || value === '') missing ??= name;
      return value ?? '';
    });
    if (missing !== null) return `group ${missing} matched nothing, so "${template}" names no role`;
    const problem = roleProblem(role);
    if (problem !== null) return `"${template}" made role name ${JSON.stringify(role)}, refused: ${problem}`;
    roles.push(role);
  }
  return roles;
}

const compiled = new WeakMap<IdentityRule, RegExp>();

function patternOf(rule: IdentityRule & { user_pattern: string }): RegExp {
  let re = compiled.get(rule);
  if (!re) compiled.set(rule, (re = compile(rule.user_pattern)));
  return re;
}

/**
 * The characters outside ASCII that toLowerCase or a case-insensitive Unicode regex takes for ASCII
 * letters (U+0130, U+017F, U+212A; the unit test scans every code point for more).
 */
const LOOKALIKE = /[\u0130\u017f\u212a]/u;

/**
 * A name as names are compared here: lower case, except the characters toLowerCase would turn into
 * ASCII (U+0130, U+212A), which stay as they are, so that they never equal an ASCII name.
 */
export function foldName(name: string): string {
  return name.replace(/[^\u0130\u212a]+/gu, (run) => run.toLowerCase());
}

const same = (a: string | undefined, b: string | undefined) => a !== undefined && b !== undefined && foldName(a) === foldName(b);

function lookalike(name: string): string | null {
  const c = LOOKALIKE.exec(name)?.[0];
  return c === undefined ? null : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * The roles of `identity` under `rules`, with which rule and why: the first rule that matches
 * decides, even when what it makes is refused (a later, broader rule is not a fallback for a
 * capture that could not be used).
 */
export function mapIdentity(rules: readonly IdentityRule[], identity: ServeIdentity): IdentityMapping {
  for (const [i, rule] of rules.entries()) {
    if (rule.user_pattern === undefined) {
      if (same(rule.user, identity.user) || same(rule.github, identity.github))
        return { mapped: true, roles: [...new Set(rule.roles)], rule: i };
      continue;
    }
    if (identity.user === undefined) continue;
    const input = foldName(identity.user);
    if (input.length > MAX_MATCH_INPUT)
      return {
        mapped: false,
        roles: null,
        rule: i,
        reason: `userName is ${input.length} characters; patterns are matched against at most ${MAX_MATCH_INPUT}`,
      };
    const match = timedMatch(patternOf(rule as IdentityRule & { user_pattern: string }), input);
    if (match === 'timeout')
      return {
        mapped: false,
        roles: null,
        rule: i,
        reason: `user_pattern ran past ${MATCH_TIME_LIMIT_MS} ms on this userName and was stopped`,
      };
    if (match === null) continue;
    // the match may owe itself to case-insensitive matching taking the character for an ASCII letter
    const odd = lookalike(input);
    if (odd !== null)
      return {
        mapped: false,
        roles: null,
        rule: i,
        reason: `userName holds ${odd}, a look-alike that case-insensitive matching takes for an ASCII letter: never mapped by a pattern`,
      };
    const roles = fill(rule.roles, match.groups ?? {});
    if (typeof roles === 'string') return { mapped: false, roles: null, rule: i, reason: roles };
    return { mapped: true, roles: [...new Set(roles)], rule: i };
  }
  return { mapped: false, roles: null, rule: null, reason: 'no identities rule matches' };
}

/** The PostgreSQL roles of `identity`, or null when it is unmapped. */
export function rolesFor(rules: readonly IdentityRule[], identity: ServeIdentity): string[] | null {
  return mapIdentity(rules, identity).roles;
}
