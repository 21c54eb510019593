// operator.no_reserved_slot: once the role has filled the server to max_connections, does this
// operator still get in? Only through the slots the server keeps back from the target: the last
// superuser_reserved_connections for superusers, and (PostgreSQL 16+) the reserved_connections
// before them for members of pg_use_reserved_connections. Said before it matters.
import type { Check, ConnectionSlots, Queryable, RoleFacts } from './types.js';

// pg_has_role is strict: to_regrole gives NULL before 16 (no such role), and so does the call.
const SLOTS_SQL = `
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       current_setting('reserved_connections', true)::int AS reserved,
       coalesce(pg_catalog.pg_has_role(current_user, pg_catalog.to_regrole('pg_use_reserved_connections'), 'USAGE'), false) AS operator_reserved,
       coalesce(pg_catalog.pg_has_role($1::oid, pg_catalog.to_regrole('pg_use_reserved_connections'), 'USAGE'), false) AS target_reserved`;

export async function collectConnectionSlots(q: Queryable, targetOid: number): Promise<ConnectionSlots> {
  const { rows } = await q.query<{
    max_connections: number;
    superuser_reserved: number;
    reserved: number | null;
    operator_reserved: boolean;
    target_reserved: boolean;
  }>(SLOTS_SQL, [targetOid]);
  const r = rows[0]!;
  return {
    maxConnections: r.max_connections,
    superuserReserved: r.superuser_reserved,
    reserved: r.reserved,
    operatorUsesReserved: r.operator_reserved,
    targetUsesReserved: r.target_reserved,
  };
}

type Tier = 'superuser' | 'reserved' | 'normal';

/** How many backends a role of this tier can have before the server refuses it (53300). */
export function slotsOpenTo(s: ConnectionSlots, tier: Tier): number {
  if (tier === 'superuser') return s.maxConnections;
  const belowSuperuser = s.maxConnections - s.superuserReserved;
  return tier === 'reserved' ? belowSuperuser : belowSuperuser - (s.reserved ?? 0);
}

const tierOf = (superuser: boolean, usesReserved: boolean): Tier => (superuser ? 'superuser' : usesReserved ? 'reserved' : 'normal');

/** Pure: null when the operator keeps a slot the target cannot take, else why it would not. */
export function lockedOutReason(f: RoleFacts): string | null {
  const s = f.connectionSlots;
  const op = f.operator.user;
  const target = JSON.stringify(f.role.name);
  const opSlots = slotsOpenTo(s, tierOf(f.operator.superuser, s.operatorUsesReserved));
  if (f.role.superuser)
    return `${target} is a superuser: it can take every slot, the reserved ones included, and then no new login of anyone gets in`;
  const targetTier = slotsOpenTo(s, tierOf(false, s.targetUsesReserved));
  // CONNECTION LIMIT binds non-superusers only
  const limit = f.role.connectionLimit >= 0 ? f.role.connectionLimit : Infinity;
  if (Math.min(limit, targetTier) < opSlots) return null;
  const who = f.operator.superuser
    ? `${op} is a superuser, but no slot is kept for superusers alone`
    : s.reserved === null
      ? `${op} is not a superuser (PostgreSQL ${f.server.major} has no pg_use_reserved_connections)`
      : s.operatorUsesReserved
        ? `${op} may use reserved_connections, but ${target} may too`
        : `${op} is neither a superuser nor a member of pg_use_reserved_connections`;
  const cap = limit === Infinity ? 'it has no CONNECTION LIMIT' : `its CONNECTION LIMIT ${limit} does not stop it`;
  return `${who}, and ${target} can take all ${opSlots} slots open to ${op} (${cap})`;
}

function slotsText(s: ConnectionSlots): string {
  const reserved = s.reserved
    ? `, and the ${s.reserved} before them (reserved_connections) for members of pg_use_reserved_connections`
    : '';
  return `max_connections ${s.maxConnections}: the last ${s.superuserReserved} (superuser_reserved_connections) are kept for superusers${reserved}`;
}

export const reservedSlotsCheck: Check = {
  ids: ['operator.no_reserved_slot'],
  evaluate(f) {
    const why = lockedOutReason(f);
    if (why === null) return [];
    const remediation = f.role.superuser
      ? 'keep a pgrevoke guard running: it holds its session, so a full server does not shut it out; take SUPERUSER from roles that do not need it'
      : `run the cutoff as a superuser${f.connectionSlots.superuserReserved > 0 ? '' : ' after raising superuser_reserved_connections above 0 (restart)'}, or on PostgreSQL 16+ as a member of pg_use_reserved_connections with reserved_connections above 0; a running pgrevoke guard holds its session and is not shut out`;
    return [
      {
        id: 'operator.no_reserved_slot',
        severity: 'high',
        title: `${f.operator.user} would be locked out once the role fills the server`,
        detail: `${slotsText(f.connectionSlots)}; ${why}. New logins then fail with SQLSTATE 53300.`,
        remediation,
        exposure: false,
      },
    ];
  },
};
