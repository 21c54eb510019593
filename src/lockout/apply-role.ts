// `role` lockouts: NOLOGIN on the primary (standbys get it by replay), the role's sessions ended on
// every node, and LOGIN back at the end, only when this lockout took it away and nobody has
// contained the role since: a cutoff also sets NOLOGIN CONNECTION LIMIT 0, and expiry must never
// undo it. The signs of a cutoff: its record in the state directory (started after the lockout
// began, not restored), or its pg_hba.conf block for the role on a node.
import { hasBlock } from '../playbook/hba-file.js';
import { readRecords } from '../record/journal.js';
import { endSessions, lockRole, ROLES_SQL, unlockRole } from './sql.js';
import type { Lockout, LockoutClient, RoleBefore } from './types.js';

export interface RoleRow {
  oid: number;
  name: string;
  can_login: boolean;
  conn_limit: number;
}

export async function readRoles(client: LockoutClient, names: readonly string[]): Promise<Map<string, RoleRow>> {
  if (!names.length) return new Map();
  const rows = (await client.query<RoleRow>({ text: ROLES_SQL, values: [names] })).rows;
  return new Map(rows.map((r) => [r.name, { ...r, oid: Number(r.oid) }]));
}

/** NOLOGIN when the role can log in (never touched otherwise); what it had before. */
export async function lockRoleNow(primary: LockoutClient, row: RoleRow): Promise<{ before: RoleBefore; nologinSet: boolean }> {
  const before: RoleBefore = { oid: row.oid, canLogin: row.can_login, connectionLimit: row.conn_limit };
  if (row.can_login) await primary.query({ text: lockRole(row.name) });
  return { before, nologinSet: row.can_login };
}

/** End the role's sessions on every connected node; how many were ended. */
export async function endRoleSessions(clients: readonly LockoutClient[], oid: number): Promise<number> {
  const ended = await Promise.all(
    clients.map(async (c) => (await c.query<{ terminated: boolean }>({ text: endSessions(oid) })).rows.filter((r) => r.terminated).length),
  );
  return ended.reduce((a, b) => a + b, 0);
}

/** Whether the role was cut off since the lockout began: a cutoff record here, or cutoff's block in a node's pg_hba.conf. */
export async function cutoffSince(l: Lockout, env: NodeJS.ProcessEnv, hbaContents: readonly string[]): Promise<string | null> {
  if (hbaContents.some((c) => hasBlock(c, l.role!))) return "pg_hba.conf holds cutoff's block for the role";
  const records = await readRecords(env).catch(() => []);
  const since = Date.parse(l.since);
  const cut = records.find(
    (r) =>
      Date.parse(r.begin.startedAt) >= since &&
      r.begin.nodes.some((n) => n.plan.roles.some((p) => p.name === l.role || p.oid === l.before?.oid)) &&
      !r.restored.some((x) => x.role === l.role),
  );
  return cut ? `a cutoff of the role began at ${cut.begin.startedAt} (${cut.file}) and was not restored` : null;
}

/**
 * Whether LOGIN comes back at the end of a `role` lockout (the statement), or why not: only what this
 * lockout took, only to the same role (by OID), only if nobody changed the role since (still NOLOGIN
 * CONNECTION LIMIT 0) and no cutoff happened since. Pure: unlock --dry-run shows what it says.
 */
export function loginBack(l: Lockout, row: RoleRow | undefined, cutoff: string | null): { sql: string } | { kept: string } {
  const before = l.before;
  if (!l.nologinSet || !before) return { kept: 'it could not log in before the lockout: NOLOGIN stays as it was' };
  if (!row) return { kept: 'the role no longer exists' };
  if (row.oid !== before.oid) return { kept: `the role of that name is another one now (OID ${row.oid}, was ${before.oid})` };
  if (row.can_login) return { kept: 'it can log in already (LOGIN was given back by hand)' };
  if (row.conn_limit !== 0) return { kept: `its connection limit was changed since (${row.conn_limit}): someone else acted on the role` };
  if (cutoff) return { kept: `${cutoff}: NOLOGIN stays` };
  return { sql: unlockRole(row.name, before) };
}
