// guard --on-membership-revoked, the pure part: what pg_auth_members allows (who may SET ROLE to
// whom, transitively) and what a member lost between two snapshots of it. A session that ran
// `SET ROLE admin` keeps acting as admin after `REVOKE admin FROM alice` (docs/postgres-notes.md,
// "SET ROLE outlives REVOKE"); PostgreSQL re-checks nothing else, so the guard ends the member's sessions.
//
// Only memberships that allow SET ROLE count: every one on 14 and 15, those with set_option on 16+,
// followed through links that all allow it (as SET ROLE does: a SET FALSE link stops the chain).
// INHERIT-only memberships (16+) are left out on purpose: what they give is checked at each
// statement, so losing one takes effect at once and no session holds anything over.

/** One row of pg_auth_members, as far as SET ROLE is concerned. OIDs as decimal text. */
export interface MembershipEdge {
  member: string;
  role: string;
  /** The membership allows SET ROLE: always before 16, set_option from 16 on. */
  canSet: boolean;
}

/** pg_auth_members as the guard saw it at one tick. */
export interface MembershipSnapshot {
  /** What the probe compares, tick after tick (md5 of the rows that matter): unchanged, nothing is read. */
  hash: string;
  /** Rows of pg_auth_members (a pair granted by two grantors is two rows on 16+). */
  count: number;
  edges: readonly MembershipEdge[];
  /** Role names by OID, as of this snapshot (a role dropped later keeps its name here). */
  names: ReadonlyMap<string, string>;
}

/** A role a member could SET ROLE to in the previous snapshot and cannot in the new one. */
export interface LostMembership {
  member: string;
  memberName: string | null;
  role: string;
  roleName: string | null;
  /** The roles in between on the way it had (alice -> mid -> admin: mid); [] for a direct membership. */
  via: { oid: string; name: string | null }[];
}

/**
 * For each member, every role it may SET ROLE to, with the shortest way there (the roles in
 * between, by OID). Breadth-first over the SET edges; PostgreSQL refuses membership loops, but a
 * role already reached is never walked again, so a loop could not hang it either.
 */
export function setClosure(edges: readonly MembershipEdge[]): Map<string, Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const e of edges) {
    if (!e.canSet) continue;
    const next = out.get(e.member);
    if (next) next.push(e.role);
    else out.set(e.member, [e.role]);
  }
  const closure = new Map<string, Map<string, string[]>>();
  for (const member of out.keys()) {
    const reached = new Map<string, string[]>();
    let frontier: [string, string[]][] = [[member, []]];
    while (frontier.length > 0) {
      const later: [string, string[]][] = [];
      for (const [at, via] of frontier) {
        for (const role of out.get(at) ?? []) {
          if (role === member || reached.has(role)) continue;
          reached.set(role, via);
          later.push([role, [...via, role]]);
        }
      }
      frontier = later;
    }
    closure.set(member, reached);
  }
  return closure;
}

/**
 * What each member lost from `prev` to `next`: every (member, role) pair of prev's closure that is
 * not in next's, directly or through the chain (REVOKE admin FROM mid loses admin for every member
 * of mid, unless another way is left). Ordered by member then role OID, numerically.
 */
export function lostMemberships(prev: MembershipSnapshot, next: MembershipSnapshot): LostMembership[] {
  if (prev.hash === next.hash) return [];
  const before = setClosure(prev.edges);
  const after = setClosure(next.edges);
  const name = (oid: string) => next.names.get(oid) ?? prev.names.get(oid) ?? null;
  const lost: LostMembership[] = [];
  for (const [member, roles] of before) {
    const still = after.get(member);
    for (const [role, via] of roles) {
      if (still?.has(role)) continue;
      lost.push({ member, memberName: name(member), role, roleName: name(role), via: via.map((oid) => ({ oid, name: name(oid) })) });
    }
  }
  const num = (a: string, b: string) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);
  return lost.sort((a, b) => num(a.member, b.member) || num(a.role, b.role));
}

/** The lost memberships grouped by member, in order: one kill statement covers them all. */
export function byMember(lost: readonly LostMembership[]): Map<string, LostMembership[]> {
  const out = new Map<string, LostMembership[]>();
  for (const l of lost) {
    const list = out.get(l.member);
    if (list) list.push(l);
    else out.set(l.member, [l]);
  }
  return out;
}

const roleRef = (name: string | null, oid: string) => (name === null ? `oid ${oid}` : JSON.stringify(name));

/** Why, in words, for the audit line and the human output: the roles the member lost and how it had them. */
export function describeLost(lost: readonly LostMembership[]): string {
  const parts = lost.map((l) => {
    const role = roleRef(l.roleName, l.role);
    return l.via.length === 0 ? role : `${role} (through ${l.via.map((v) => roleRef(v.name, v.oid)).join(', ')})`;
  });
  const s = lost.length === 1 ? '' : 's';
  return `lost membership${s} in ${parts.join(', ')}: a session that ran SET ROLE keeps acting as the role until it ends`;
}
