// GET /Users's query (RFC 7644 3.4.2): filter, attributes/excludedAttributes, startIndex/count.
// Filters are parsed and matched by SCIMMY's Filter; on top of it: an expression with no value
// (`userName eq`) or a dangling `and` is invalidFilter rather than matched, and userName compares without
// case, as RFC 7643 defines it (caseExact false; Okta's spec test looks a user up in capitals).
import type { Filter as ScimFilter } from 'scimmy/types';
import { foldName } from '../identity.js';
import { badRequest } from './errors.js';
import SCIMMY, { MAX_RESULTS } from './scimmy.js';

const PRESENCE = new Set(['pr', 'np']);

/** Every comparison of a parsed filter has its value (SCIMMY accepts `userName eq` and matches nothing). */
function checkExpressions(node: unknown, text: string): void {
  if (Array.isArray(node)) {
    if (node.every((x) => typeof x === 'string')) {
      const [first, ...rest] = node as string[];
      const [comparator, ...values] = first?.toLowerCase() === 'not' ? rest : [first, ...rest];
      if (comparator && !PRESENCE.has(comparator.toLowerCase()) && values.length === 0)
        throw badRequest('invalidFilter', `the filter '${text}' compares with '${comparator}' but gives no value`);
      return;
    }
    for (const x of node) checkExpressions(x, text);
    return;
  }
  if (typeof node === 'object' && node !== null) for (const v of Object.values(node)) checkExpressions(v, text);
}

/** Strings of the expressions on userName, folded as identity.ts compares names (the users' are folded too): a look-alike is not the ASCII name. */
function foldUserName(node: unknown, inUserName = false): unknown {
  if (Array.isArray(node)) return node.map((x) => foldUserName(x, inUserName));
  if (typeof node === 'string') return inUserName ? foldName(node) : node;
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, foldUserName(v, inUserName || k.toLowerCase() === 'username')]));
}

function parse(text: string): ScimFilter {
  try {
    return new SCIMMY.Types.Filter(text);
  } catch (err) {
    throw badRequest('invalidFilter', `the filter '${text}' cannot be parsed: ${(err as Error).message}`);
  }
}

/** The `filter` parameter as a matcher of User JSON objects, or null when there is none. */
export function userFilter(text: string | null): ((users: Record<string, unknown>[]) => Record<string, unknown>[]) | null {
  if (text === null) return null;
  if (!text.trim()) throw badRequest('invalidFilter', 'the filter is empty');
  // SCIMMY drops a dangling logical operator (`userName eq "a" and`); a value ending so is quoted
  if (/(^|[\s)])(and|or|not)$/i.test(text.trim())) throw badRequest('invalidFilter', `the filter '${text}' ends with a logical operator`);
  const parsed = parse(text);
  checkExpressions([...parsed], text);
  const folded = new SCIMMY.Types.Filter(foldUserName([...parsed]));
  return (users) => {
    const views = new Map(users.map((u) => [typeof u.userName === 'string' ? { ...u, userName: foldName(u.userName) } : u, u]));
    return folded.match([...views.keys()]).map((v) => views.get(v) as Record<string, unknown>);
  };
}

/** `attributes` or `excludedAttributes` (RFC 7644 3.9) as SCIMMY's attribute filter, or undefined. */
export function attributeFilter(query: URLSearchParams): ScimFilter | undefined {
  const include = query.get('attributes');
  const exclude = query.get('excludedAttributes');
  const list = include ?? exclude;
  if (list === null) return undefined;
  const names = list
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (names.length === 0) throw badRequest('invalidValue', `${include !== null ? 'attributes' : 'excludedAttributes'} names no attribute`);
  // as SCIMMY's own Resource builds it: "present" keeps an attribute, "not present" drops it
  return parse(names.map((a) => `${a} ${include !== null ? 'pr' : 'np'}`).join(' and '));
}

function integerParam(query: URLSearchParams, name: string): number | null {
  const raw = query.get(name);
  if (raw === null) return null;
  if (!/^-?\d+$/.test(raw.trim())) throw badRequest('invalidValue', `${name} must be an integer, not '${raw}'`);
  return Number(raw.trim());
}

/**
 * startIndex (1-based; below 1 is 1) and count (below 0 is 0; at most MAX_RESULTS, the default),
 * as RFC 7644 3.4.2.4 has them.
 */
export function paging(query: URLSearchParams): { startIndex: number; count: number } {
  const startIndex = Math.max(integerParam(query, 'startIndex') ?? 1, 1);
  const count = Math.min(Math.max(integerParam(query, 'count') ?? MAX_RESULTS, 0), MAX_RESULTS);
  return { startIndex, count };
}
