// Exact role lookup; an unknown name gets a hint: the name without SQL quotes, a comma list split
// into arguments, or near matches (a different case, a typo).
import { findRole } from '../pg/roles.js';
import type { Queryable, RoleInfo } from '../checks/types.js';
import { ExitCode, PgrevokeError } from '../errors.js';

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

// Candidates come from the server already narrowed (same name folded, or same first letters), so the
// error path stays cheap on clusters with thousands of roles.
const CANDIDATES_SQL = `
SELECT rolname FROM pg_roles
WHERE lower(rolname) = lower($1) OR lower(rolname) LIKE lower(left($1, 2)) || '%' OR lower(rolname) LIKE '%' || lower($1) || '%'
LIMIT 200`;

export async function suggestRoles(q: Queryable, name: string): Promise<string[]> {
  const { rows } = await q.query<{ rolname: string }>(CANDIDATES_SQL, [name]);
  return rows
    .map((r) => ({
      name: r.rolname,
      d: r.rolname.toLowerCase() === name.toLowerCase() ? 0 : distance(r.rolname.toLowerCase(), name.toLowerCase()),
    }))
    .filter((c) => c.d <= Math.max(2, Math.floor(name.length / 3)) || c.name.toLowerCase().includes(name.toLowerCase()))
    .sort((a, b) => a.d - b.d || a.name.localeCompare(b.name))
    .slice(0, 5)
    .map((c) => c.name);
}

/** A word as a shell takes it back: plain when it needs no quoting, else in single quotes. */
function shellWord(name: string): string {
  return /^[\w.@%+=:/-]+$/.test(name) ? name : `'${name.replace(/'/g, `'\\''`)}'`;
}

/**
 * Other names the operator may have meant: the name without SQL quoting ('"Bob"' is not Bob:
 * role names are exact), or the parts of a comma-separated list given as one argument.
 */
export function readingsOf(name: string): { unquoted?: string; parts: string[] } {
  const sql = /^"(.+)"$/s.exec(name) ?? /^'(.+)'$/s.exec(name);
  const unquoted = sql ? sql[1]!.replaceAll(name[0]!.repeat(2), name[0]!) : undefined;
  const parts = name.includes(',')
    ? name
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
  return { unquoted, parts: parts.length > 1 ? parts : [] };
}

/** The hint for an unknown role, from the readings that exist and the near spellings. */
export function unknownRoleHint(name: string, existing: ReadonlySet<string>, near: string[]): string {
  const { unquoted, parts } = readingsOf(name);
  if (unquoted !== undefined && existing.has(unquoted))
    return `role names are exact, with no SQL quoting (the quotes were taken as part of the name): did you mean ${shellWord(unquoted)}?`;
  const found = parts.filter((p) => existing.has(p));
  if (found.length) {
    const missing = parts.filter((p) => !existing.has(p));
    return `a comma is part of a role name, not a list: give each role as an argument of its own (${parts.map(shellWord).join(' ')})${
      missing.length ? `; no role is named ${missing.map(shellWord).join(' or ')}` : ''
    }`;
  }
  return near.length
    ? `role names are exact and case-sensitive; did you mean ${near.map((n) => JSON.stringify(n)).join(', ')}?`
    : 'role names are exact and case-sensitive, as in pg_roles.rolname';
}

const EXISTING_SQL = `SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])`;

async function existingReadings(q: Queryable, name: string): Promise<Set<string>> {
  const { unquoted, parts } = readingsOf(name);
  const names = [...(unquoted === undefined ? [] : [unquoted]), ...parts];
  if (!names.length) return new Set();
  const { rows } = await q.query<{ rolname: string }>(EXISTING_SQL, [names]);
  return new Set(rows.map((r) => r.rolname));
}

export async function resolveRole(q: Queryable, name: string): Promise<RoleInfo> {
  const role = await findRole(q, name);
  if (role) return role;
  const [near, existing] = await Promise.all([suggestRoles(q, name), existingReadings(q, name)]);
  throw new PgrevokeError(`role ${JSON.stringify(name)} does not exist`, {
    sqlstate: '42704',
    exitCode: ExitCode.USAGE,
    hint: unknownRoleHint(name, existing, near),
  });
}
