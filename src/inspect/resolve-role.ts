// Exact role lookup; an unknown name gets near matches (a different case, a typo) as a hint.
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

export async function resolveRole(q: Queryable, name: string): Promise<RoleInfo> {
  const role = await findRole(q, name);
  if (role) return role;
  const near = await suggestRoles(q, name);
  throw new PgrevokeError(`role ${JSON.stringify(name)} does not exist`, {
    sqlstate: '42704',
    exitCode: ExitCode.USAGE,
    hint: near.length
      ? `role names are exact and case-sensitive; did you mean ${near.map((n) => JSON.stringify(n)).join(', ')}?`
      : 'role names are exact and case-sensitive, as in pg_roles.rolname',
  });
}
