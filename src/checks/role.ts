// The role itself: can it still log in, what attributes make it dangerous, who can act as it.
import { hbaLoginVerdict } from './hba-login.js';
import type { Check, Finding, Membership, Queryable, RoleFacts, RoleMemberships } from './types.js';

// Walk pg_auth_members ourselves: pg_has_role() is true for everything when the caller is superuser.
const MEMBERSHIP_SQL = (direction: 'up' | 'down') => {
  const [from, to] = direction === 'up' ? ['member', 'roleid'] : ['roleid', 'member'];
  return `
WITH RECURSIVE walk(roleid, member, grantor, admin_option, depth, seen) AS (
  SELECT m.roleid, m.member, m.grantor, m.admin_option, 1, ARRAY[m.${from}]
  FROM pg_auth_members m WHERE m.${from} = $1::oid
  UNION ALL
  SELECT m.roleid, m.member, m.grantor, m.admin_option, w.depth + 1, w.seen || m.${from}
  FROM pg_auth_members m JOIN walk w ON m.${from} = w.${to}
  WHERE NOT m.${from} = ANY (w.seen) AND w.depth < 64
)
SELECT r.rolname AS role, mr.rolname AS member, g.rolname AS grantor, w.admin_option, min(w.depth) AS depth
FROM walk w JOIN pg_roles r ON r.oid = w.roleid JOIN pg_roles mr ON mr.oid = w.member
LEFT JOIN pg_roles g ON g.oid = w.grantor
GROUP BY 1, 2, 3, 4 ORDER BY 5, 1, 2`;
};

export async function collectMemberships(q: Queryable, roleOid: number): Promise<RoleMemberships> {
  type Row = { role: string; member: string; grantor: string | null; admin_option: boolean; depth: number };
  const conv = (r: Row): Membership => ({
    role: r.role,
    member: r.member,
    grantor: r.grantor,
    adminOption: r.admin_option,
    depth: r.depth,
  });
  const up = await q.query<Row>(MEMBERSHIP_SQL('up'), [roleOid]);
  const down = await q.query<Row>(MEMBERSHIP_SQL('down'), [roleOid]);
  return { memberOf: up.rows.map(conv), members: down.rows.map(conv) };
}

function canLoginFinding(f: RoleFacts): Finding | null {
  const r = f.role;
  if (!r.canLogin) return null;
  const base = { id: 'role.can_login', remediation: `pgrevoke cutoff ${JSON.stringify(r.name)} (or ALTER ROLE ... NOLOGIN)` };
  const hba = hbaLoginVerdict(f);
  if (!r.expired) {
    if (hba.kind === 'blocked')
      return {
        ...base,
        severity: 'low',
        title: 'role has LOGIN, but every pg_hba.conf path rejects it',
        detail: `${hba.reason}; HBA is per node and one edit away from admitting it again`,
        remediation: `ALTER ROLE ${JSON.stringify(r.name)} NOLOGIN as well (pgrevoke cutoff does both)`,
        exposure: false,
      };
    return {
      ...base,
      severity: 'critical',
      title: 'role can log in',
      detail: `rolcanlogin is true${r.validUntil ? ` (valid until ${r.validUntil}, not yet passed)` : ' and no expiry is set'}`,
      exposure: true,
    };
  }
  // VALID UNTIL binds only password methods: trust, peer, cert, ldap... ignore it.
  if (hba.kind === 'blocked') return null;
  if (hba.kind === 'open')
    return {
      ...base,
      severity: 'critical',
      title: 'role is expired, but HBA still lets it in without a password',
      detail: `VALID UNTIL ${r.validUntil} has passed, but expiry binds only password methods; ${hba.reason}`,
      exposure: true,
    };
  return {
    ...base,
    severity: 'high',
    title: 'role is expired, but may still log in without a password',
    detail: `VALID UNTIL ${r.validUntil} has passed, which refuses password logins only; trust/peer/cert paths cannot be ruled out: ${hba.reason}`,
    exposure: true,
  };
}

export const roleCheck: Check = {
  ids: ['role.can_login', 'role.superuser', 'role.createrole', 'role.replication', 'role.bypassrls', 'role.members'],
  evaluate(f) {
    const r = f.role;
    const out: Finding[] = [];
    const login = canLoginFinding(f);
    if (login) out.push(login);
    const attr = (id: string, on: boolean, severity: Finding['severity'], title: string, detail: string, remediation: string) => {
      if (on) out.push({ id, severity, title, detail, remediation, exposure: false });
    };
    attr(
      'role.superuser',
      r.superuser,
      'critical',
      'role is a superuser',
      'a superuser session can undo NOLOGIN, edit HBA through SQL, and leave persistence anywhere',
      'terminate its sessions first, then ALTER ROLE ... NOSUPERUSER NOLOGIN, and audit ALTER SYSTEM and event triggers',
    );
    attr(
      'role.createrole',
      r.createRole,
      'high',
      'role has CREATEROLE',
      'it can create or alter other roles',
      'ALTER ROLE ... NOCREATEROLE; review roles it created',
    );
    attr(
      'role.replication',
      r.replication,
      'high',
      'role has REPLICATION',
      'it can stream all data through a walsender',
      'ALTER ROLE ... NOREPLICATION; check pg_replication_slots',
    );
    attr(
      'role.bypassrls',
      r.bypassRls,
      'medium',
      'role has BYPASSRLS',
      'row-level security does not apply to it',
      'ALTER ROLE ... NOBYPASSRLS',
    );
    if (f.memberships.members.length > 0) {
      const names = f.memberships.members.map((m) => m.member);
      out.push({
        id: 'role.members',
        severity: 'high',
        title: 'other roles can act as this role',
        detail: `members (direct or inherited): ${[...new Set(names)].join(', ')}; an already-active SET ROLE survives revoking the membership`,
        remediation: 'REVOKE the memberships you do not trust, and terminate those members\u2019 sessions too',
        exposure: false,
      });
    }
    return out;
  },
};
