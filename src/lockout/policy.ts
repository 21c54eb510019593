// The lockout policy, pure (no I/O, the clock handed in): which failures count toward what, when a
// key is locked, which lockouts expire. The rules (docs/lockouts.md says them to the user):
//  - failures of an excluded role or address, of the engine's own login role or from the address
//    it connects from, never count (the engine must never lock itself, or the operator, out);
//  - a failure older than the window (a log read late, a restart) never counts;
//  - `address`: N failures of one role from one address within the window lock that pair; `role`:
//    N failures of one role (from anywhere) lock the role; a ban: M failures from one address across
//    every role, unknown names included, reject the address for every role;
//  - an unknown user name (role_missing) counts toward the ban only: a role that does not exist
//    cannot be locked, and invented names must not fill pg_hba.conf;
//  - a failure the lockout itself causes (the attacker still knocking) is counted on the lockout
//    (knocks, lastKnock) and never extends it: it expires `forMs` after it began, whatever the
//    attacker does, and failures while it held do not count toward the next one. A knock on a
//    pair or role lockout still counts toward the address ban (it is a login attempt from there);
//  - bounded: at most MAX_TRACKED_KEYS keys of each sort (pairs, roles, addresses) and MAX_TIMES
//    times per key. At the cap the key whose latest failure is oldest is forgotten first (an
//    attacker inventing names or IPv6 addresses pushes out the slowest keys, never the busiest).
//    At most MAX_ACTIVE_LOCKOUTS lockouts are in force: past that, no new one is made (said, once
//    a minute) and the failures keep counting, so one is made as soon as others expire.
import { roleNameProblem } from '../util/role-name.js';
import { canonicalAddress, inRanges, parseRanges, type AddressRanges } from './address.js';
import type { AuthFailure } from '../serverlog/types.js';
import type { Lockout, LockoutKind, LockoutPolicy } from './types.js';

export const MAX_TRACKED_KEYS = 10_000;
export const MAX_ACTIVE_LOCKOUTS = 1_000;
/** No threshold above this is accepted (guard's flag parser uses it): a key never keeps more times. */
export const MAX_THRESHOLD = 1_000;

/** A lockout the policy decided on; the store gives it an id and the nodes. */
export interface NewLockout {
  kind: LockoutKind;
  role: string | null;
  address: string | null;
  count: number;
  since: string;
  until: string;
  reason: string;
}

export interface Decision {
  lock: NewLockout[];
  /** Per lockout id: failures it caused since the last decision, and the latest one's time. */
  knocks: Map<string, { count: number; last: string }>;
  /** Ids of lockouts whose time is up. */
  expire: string[];
  /** Bounds reached in this decision, one line each. */
  capped: string[];
}

/** Who the engine is on its nodes: never locked out. */
export interface Self {
  roles: ReadonlySet<string>;
  addresses: ReadonlySet<string>;
}

/** Failure times per key, bounded (insertion order is recency: a touched key moves to the end). */
class Windows {
  private readonly keys = new Map<string, number[]>();
  evicted = 0;

  constructor(
    private readonly need: number,
    private readonly windowMs: number,
  ) {}

  /** Add a failure at `t`; true when the key now has `need` failures within the window (its times are then cleared). */
  add(key: string, t: number): number | null {
    const times = this.keys.get(key) ?? [];
    this.keys.delete(key);
    times.push(t);
    times.sort((a, b) => a - b);
    const newest = times[times.length - 1]!;
    while (times.length && (times[0]! < newest - this.windowMs || times.length > this.need)) times.shift();
    if (times.length >= this.need) return times.length;
    this.keys.set(key, times);
    if (this.keys.size > MAX_TRACKED_KEYS) {
      this.keys.delete(this.keys.keys().next().value!);
      this.evicted++;
    }
    return null;
  }

  get size(): number {
    return this.keys.size;
  }
}

const keyOf = (...parts: (string | null)[]) => parts.map((p) => p ?? '').join('\0');
export const lockoutKey = (l: Pick<Lockout, 'kind' | 'role' | 'address'>) => keyOf(l.kind, l.role, l.address);

/** Why a role name cannot be locked by a pg_hba.conf line (hba-file.ts's hbaInexpressible, for every major), or null. */
function hbaProblem(name: string): string | null {
  if (/[\n\r]/.test(name) || name.startsWith('/')) return 'cannot be written exactly in pg_hba.conf';
  return roleNameProblem(name);
}

function minutes(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.round(ms / 1000)}s`;
}

/** The counting state of one engine: failures of every node of one cluster go into one tally. */
export class Tally {
  private readonly pairs: Windows | null;
  private readonly roles: Windows | null;
  private readonly addresses: Windows | null;
  private readonly ranges: AddressRanges;
  private readonly excluded: ReadonlySet<string>;

  constructor(readonly policy: LockoutPolicy) {
    this.pairs = policy.after === null ? null : new Windows(policy.after, policy.windowMs);
    this.roles = policy.after === null ? null : new Windows(policy.after, policy.windowMs);
    this.addresses = policy.banAddressAfter === null ? null : new Windows(policy.banAddressAfter, policy.windowMs);
    this.ranges = parseRanges(policy.excludeAddresses);
    this.excluded = new Set(policy.excludeRoles);
  }

  private evicted(): number {
    return (this.pairs?.evicted ?? 0) + (this.roles?.evicted ?? 0) + (this.addresses?.evicted ?? 0);
  }

  /** Keys tracked now, per sort (for tests and the cap message). */
  tracked(): { pairs: number; roles: number; addresses: number } {
    return { pairs: this.pairs?.size ?? 0, roles: this.roles?.size ?? 0, addresses: this.addresses?.size ?? 0 };
  }

  private newLockout(kind: LockoutKind, f: AuthFailure, address: string | null, count: number, now: number): NewLockout {
    const who =
      kind === 'address_ban'
        ? `from ${address} (any role)`
        : kind === 'role'
          ? `of ${JSON.stringify(f.user)}`
          : `of ${JSON.stringify(f.user)} from ${address}`;
    const n = kind === 'address_ban' ? this.policy.banAddressAfter : this.policy.after;
    return {
      kind,
      role: kind === 'address_ban' ? null : f.user,
      address: kind === 'role' ? null : address,
      count,
      since: new Date(now).toISOString(),
      until: new Date(now + this.policy.forMs).toISOString(),
      reason: `${count} failed logins ${who} within ${minutes(this.policy.windowMs)} (threshold ${n}; last: ${f.kind})`,
    };
  }

  /**
   * Count the failures against the lockouts in force and decide. `lockouts` are the current ones
   * (ended ones are ignored); `now` is the engine's clock, in ms.
   */
  decide(
    failures: readonly AuthFailure[],
    lockouts: readonly Lockout[],
    now: number,
    self: Self = { roles: new Set(), addresses: new Set() },
  ): Decision {
    const d: Decision = { lock: [], knocks: new Map(), expire: [], capped: [] };
    const live = lockouts.filter((l) => !l.ended);
    for (const l of live) if (Date.parse(l.until) <= now) d.expire.push(l.id);
    const active = new Map(live.filter((l) => !d.expire.includes(l.id)).map((l) => [lockoutKey(l), l]));
    const evictedBefore = this.evicted();
    const sorted = failures
      .map((f) => ({ f, t: Math.min(Date.parse(f.at), now) }))
      .filter((x) => Number.isFinite(x.t) && x.t >= now - this.policy.windowMs)
      .sort((a, b) => a.t - b.t);
    for (const { f, t } of sorted) this.count(f, t, now, active, self, d);
    const evicted = this.evicted() - evictedBefore;
    if (evicted > 0)
      d.capped.push(`more than ${MAX_TRACKED_KEYS} keys failing at once: forgot the ${evicted} whose latest failure was oldest`);
    return d;
  }

  private knock(d: Decision, l: Lockout, f: AuthFailure): void {
    const k = d.knocks.get(l.id) ?? { count: 0, last: f.at };
    k.count++;
    if (Date.parse(f.at) >= Date.parse(k.last)) k.last = f.at;
    d.knocks.set(l.id, k);
  }

  private lock(d: Decision, active: Map<string, Lockout>, n: NewLockout): void {
    if (active.size >= MAX_ACTIVE_LOCKOUTS) {
      d.capped.push(`${MAX_ACTIVE_LOCKOUTS} lockouts in force already: ${n.reason} is not locked until some expire`);
      return;
    }
    d.lock.push(n);
    // until the store has it, later failures of the same key are knocks on it
    active.set(lockoutKey(n), {
      ...n,
      id: `new:${lockoutKey(n)}`,
      nodes: [],
      knocks: 0,
      lastKnock: null,
      applied: [],
      before: null,
      nologinSet: false,
      ended: null,
    });
  }

  private count(f: AuthFailure, t: number, now: number, active: Map<string, Lockout>, self: Self, d: Decision): void {
    const address = canonicalAddress(f.address);
    if (this.excluded.has(f.user) || self.roles.has(f.user)) return;
    if (address !== null && (inRanges(address, this.ranges) || self.addresses.has(address))) return;
    const ban = address === null ? undefined : active.get(keyOf('address_ban', null, address));
    if (ban) return this.knock(d, ban, f);
    const known = f.kind !== 'role_missing';
    const pairKey = keyOf(this.policy.by === 'address' ? 'address' : 'role', f.user, this.policy.by === 'address' ? address : null);
    const held = known ? active.get(pairKey) : undefined;
    if (held) this.knock(d, held, f);
    else if (this.pairs && known && this.policy.by === 'address' && address !== null && !hbaProblem(f.user)) {
      const n = this.pairs.add(keyOf(f.user, address), t);
      if (n !== null) this.lock(d, active, this.newLockout('address', f, address, n, now));
    } else if (this.roles && known && this.policy.by === 'role' && !roleNameProblem(f.user)) {
      const n = this.roles.add(f.user, t);
      if (n !== null) this.lock(d, active, this.newLockout('role', f, null, n, now));
    }
    if (this.addresses && address !== null) {
      const n = this.addresses.add(address, t);
      if (n !== null) this.lock(d, active, this.newLockout('address_ban', f, address, n, now));
    }
  }
}
