// `pgrevoke guard` option parsing: pure, unit-tested, usage errors with hints.
import { usageError } from '../errors.js';
import { durationFlag, MAX_AGE_S, numberFlag } from '../util/flags.js';
import { checkRoleName } from '../util/role-name.js';
import type { TimeoutRules } from './sql.js';

/** Between two ticks on a node: half of it is the mean wait before a revoked role's sessions end (BENCHMARKS.md, guard). */
export const DEFAULT_INTERVAL_MS = 125;
export const DEFAULT_MAX_BLIND_MS = 30_000;
/** --max-blind: up to a day (0: never). */
export const MAX_BLIND_S = 86_400;

/**
 * `NAME=SECONDS`, split at the LAST `=` so that a name may itself contain `=`. SECONDS takes the
 * duration syntax of `pgrevoke sessions` (a bare number is seconds; 500ms, 30s, 5m, 1h, 1h30m);
 * 0 means "no limit" (a role entry of 0 exempts that role from its database's limit); at most 365 days.
 */
export function parseNameSeconds(text: string, flag: string): [string, number] {
  const i = text.lastIndexOf('=');
  const what = flag.endsWith('-role') ? 'ROLE' : 'DATABASE';
  if (i <= 0 || i === text.length - 1)
    throw usageError(`invalid ${flag}: "${text}"`, `expected ${what}=SECONDS, e.g. ${flag} ${what === 'ROLE' ? 'app' : 'postgres'}=5m`);
  const name = what === 'ROLE' ? checkRoleName(text.slice(0, i), flag) : text.slice(0, i);
  const seconds = durationFlag(text.slice(i + 1), flag, { min: 0, max: MAX_AGE_S });
  return [name, seconds];
}

/** Repeated NAME=SECONDS flags into a map; a later entry for the same exact name replaces an earlier one. */
export function parseTimeouts(values: readonly string[] | undefined, flag: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of values ?? []) {
    const [name, s] = parseNameSeconds(v, flag);
    out.set(name, s);
  }
  return out;
}

export function timeoutRules(byDatabase: readonly string[] | undefined, byRole: readonly string[] | undefined, flag: string): TimeoutRules {
  return { databases: parseTimeouts(byDatabase, flag), roles: parseTimeouts(byRole, `${flag}-role`) };
}

/** --interval MS: an integer from 10 to 60000. */
export function parseInterval(text: string | undefined): number {
  return numberFlag(text, '--interval', { integer: true, min: 10, max: 60_000, unit: 'ms' }) ?? DEFAULT_INTERVAL_MS;
}

/** --max-blind SECONDS (duration syntax; 0: never; at most MAX_BLIND_S) in ms; default DEFAULT_MAX_BLIND_MS. */
export function parseMaxBlind(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_BLIND_MS;
  return Math.round(durationFlag(text, '--max-blind', { min: 0, max: MAX_BLIND_S }) * 1000);
}

/** Exact role names, deduplicated in order; each passes checkRoleName (empty, NUL, over 63 bytes: exit 2). */
export function parseRoleNames(values: readonly string[] | undefined, flag: string): string[] {
  const out: string[] = [];
  for (const v of values ?? []) {
    checkRoleName(v, flag);
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

/** The deny file: the same format as verify's --roles-file. */
export { parseRolesFile as parseDenyFile } from '../util/roles-file.js';
