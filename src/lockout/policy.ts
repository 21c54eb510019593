// The lockout policy, pure (no I/O, the clock handed in): which failures count toward what, when a
// key is locked, which lockouts expire. The rules (docs/lockouts.md says them to the user):
//  - failures of an excluded role or address, of the engine's own login role or from the address
//    it connects from, never count (the engine must never lock itself, or the operator, out);
//  - a failure older than the window (a log read late, a restart) never counts; those inside it
//    outlive a guard restart (the engine keeps the windows in the state directory: restore);
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
//    At most MAX_ACTIVE_LOCKOUTS lockouts are in force, and that cap must not turn lockouts off
//    (an attacker with many addresses would fill it, then guess freely), so it fails closed:
//  - pair lockouts of one role from two or more addresses of one prefix (IPv4 /24, IPv6 /64) become
//    one lockout of the prefix for that role, the counts summed (an IPv6 attacker rotating within
//    its /64 costs one line);
//  - at the cap, or past MAX_LOCKOUTS_PER_ROLE separate lockouts of one role, a role still failing
//    from a new place is locked from every address (0.0.0.0/0 and ::/0, its other lockouts merged
//    into it), said loudly: an account lockout, rather than unlimited guesses. A ban at the cap is
//    widened to the address's prefix. These may go past the cap, up to MAX_WIDE_LOCKOUTS more;
//  - a prefix that holds an excluded address is never locked (the lockout stays one address), nor
//    one that would refuse the engine's own connection; a role-wide lockout holds for excluded
//    addresses too (exclude the role).
// The engine's own connection is spared, and nothing more: only a lockout that would refuse it
// (its login role from its address, NOLOGIN of its role, a ban of its address) is not made, and that
// is said. Failures from its address count (a local client, dblink on the server itself, connects
// from there too), and so do failures of its role from elsewhere: exempting more takes --exclude-*.
import { roleNameProblem } from '../util/role-name.js';
import { canonicalAddress, covers, inRanges, networkOf, overlaps, parseRanges, type AddressRanges } from './address.js';
import type { AuthFailure } from '../serverlog/types.js';
import type { Lockout, LockoutKind, LockoutPolicy } from './types.js';

export const MAX_TRACKED_KEYS = 10_000;
export const MAX_ACTIVE_LOCKOUTS = 1_000;
/** Separate lockouts (addresses, prefixes) of one role before the next one locks the role from everywhere. */
export const MAX_LOCKOUTS_PER_ROLE = 32;
/** Role-wide lockouts and widened bans may go this far past MAX_ACTIVE_LOCKOUTS (schema.ts's MAX_STORED holds them). */
export const MAX_WIDE_LOCKOUTS = 2_000;
/** The two lines of a role-wide lockout: every IPv4 and every IPv6 client. */
export const EVERYWHERE = ['0.0.0.0/0', '::/0'] as const;
/** No threshold above this is accepted (guard's flag parser uses it): a key never keeps more times. */
export const MAX_THRESHOLD = 1_000;

/** A lockout the policy decided on; the store gives it an id and the nodes. */
export interface NewLockout extends Pick<Lockout, 'kind' | 'role' | 'address' | 'count' | 'since' | 'until' | 'reason'> {
  /** Ids of stored lockouts this one takes the place of (merged into it): they end as it is recorded. */
  replaces?: string[];
}

/** A lockout as the store records it: the decision's fields, an id and the nodes, nothing applied, knocked or ended yet. */
export function recorded(n: NewLockout, id: string, nodes: string[]): Lockout {
  return { ...n, id, nodes, knocks: 0, lastKnock: null, applied: [], before: null, nologinSet: false, ended: null };
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

/** Who the engine is on its nodes: a lockout that would refuse it is not made. */
export interface Self {
  roles: ReadonlySet<string>;
  addresses: ReadonlySet<string>;
}

/**
 * Failure times per key, bounded (insertion order is recency: a touched key moves to the end).
 * Changes since `begin` can be undone: the times each key had before its first change are kept.
 */
class Windows {
  private readonly keys = new Map<string, number[]>();
  evicted = 0;
  /** Times added or restored so far: the engine writes the windows when this changed. */
  changes = 0;
  private undo: { keys: Map<string, number[] | undefined>; evicted: number } | null = null;

  constructor(
    private readonly need: number,
    private readonly windowMs: number,
  ) {}

  begin(): void {
    this.undo = { keys: new Map(), evicted: this.evicted };
  }

  /** Keep the changes since `begin` (rollback: undo them). */
  end(rollback: boolean): void {
    const undo = this.undo;
    this.undo = null;
    if (!undo || !rollback) return;
    for (const [key, times] of undo.keys) {
      this.keys.delete(key);
      if (times) this.keys.set(key, times);
    }
    this.evicted = undo.evicted;
  }

  private saveForUndo(key: string): void {
    if (this.undo && !this.undo.keys.has(key)) this.undo.keys.set(key, this.keys.get(key)?.slice());
  }

  /** Add a failure at `t`; true when the key now has `need` failures within the window (its times are then cleared). */
  add(key: string, t: number): number | null {
    this.saveForUndo(key);
    this.changes++;
    const times = this.keys.get(key) ?? [];
    this.keys.delete(key);
    times.push(t);
    times.sort((a, b) => a - b);
    const newest = times[times.length - 1]!;
    while (times.length && (times[0]! < newest - this.windowMs || times.length > this.need)) times.shift();
    if (times.length >= this.need) return times.length;
    this.keys.set(key, times);
    if (this.keys.size > MAX_TRACKED_KEYS) {
      const oldest = this.keys.keys().next().value!;
      this.saveForUndo(oldest);
      this.keys.delete(oldest);
      this.evicted++;
    }
    return null;
  }

  get size(): number {
    return this.keys.size;
  }

  /** Per key, oldest key first, the times still inside the window at `now` (what the state keeps). */
  snapshot(now: number): [string, number[]][] {
    const out: [string, number[]][] = [];
    for (const [key, times] of this.keys) {
      const inside = times.filter((t) => t >= now - this.windowMs);
      if (inside.length) out.push([key, inside]);
    }
    return out;
  }

  /**
   * Times from the state, before any counting: only those inside the window at `now` (a time ahead
   * of the clock counts as now, as decide does), at most need - 1 per key (the next failure locks,
   * even if the threshold was lowered meanwhile), at most MAX_TRACKED_KEYS keys, the latest kept.
   */
  restore(entries: readonly (readonly [string, readonly number[]])[], now: number): void {
    if (this.need <= 1) return;
    const kept = entries
      .map(([key, times]) => {
        const inside = times.map((t) => Math.min(t, now)).filter((t) => t >= now - this.windowMs);
        return [key, inside.sort((a, b) => a - b).slice(-(this.need - 1))] as const;
      })
      .filter(([, times]) => times.length > 0)
      .sort(([, a], [, b]) => a[a.length - 1]! - b[b.length - 1]!);
    for (const [key, times] of kept.slice(-MAX_TRACKED_KEYS)) {
      const merged = [...(this.keys.get(key) ?? []), ...times].sort((a, b) => a - b).slice(-(this.need - 1));
      this.keys.delete(key);
      this.keys.set(key, merged);
    }
    this.changes++;
  }
}

/** The windows of a tally, per sort, as the state directory keeps them (src/lockout/tally-store.ts). */
export interface TallyWindows {
  pairs: [string, number[]][];
  roles: [string, number[]][];
  addresses: [string, number[]][];
}

const keyOf = (...parts: (string | null)[]) => parts.map((p) => p ?? '').join('\0');
export const lockoutKey = (l: Pick<Lockout, 'kind' | 'role' | 'address'>) => keyOf(l.kind, l.role, l.address);

/** Why a role name cannot be locked by a pg_hba.conf line (hba-file.ts's hbaInexpressible, for every major), or null. */
function hbaProblem(name: string): string | null {
  if (/[\n\r]/.test(name) || name.startsWith('/')) return 'cannot be written exactly in pg_hba.conf';
  return roleNameProblem(name);
}

/** Whether a lockout of `role` (null: a ban, every role) from `target` (null: NOLOGIN, everywhere) would refuse the engine's own login. */
function refusesSelf(self: Self, role: string | null, target: string | null): boolean {
  if (role !== null && !self.roles.has(role)) return false;
  if (target === null) return true;
  for (const a of self.addresses) if (covers(target, a)) return true;
  return false;
}

const SPARED = "would refuse the engine's own connection";

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

  /**
   * The counts `decide` makes from here on are tentative: `settle(false)` keeps them, `settle(true)`
   * undoes them (the lockouts they made were not recorded: the same failures are handed over again).
   */
  begin(): void {
    for (const w of [this.pairs, this.roles, this.addresses]) w?.begin();
  }

  settle(rollback: boolean): void {
    for (const w of [this.pairs, this.roles, this.addresses]) w?.end(rollback);
  }

  private evicted(): number {
    return (this.pairs?.evicted ?? 0) + (this.roles?.evicted ?? 0) + (this.addresses?.evicted ?? 0);
  }

  /** Times counted or restored so far (the engine writes the windows when this changed). */
  changes(): number {
    return (this.pairs?.changes ?? 0) + (this.roles?.changes ?? 0) + (this.addresses?.changes ?? 0);
  }

  /** The failure times still inside the window at `now`, per sort and key (kept across a restart). */
  snapshot(now: number): TallyWindows {
    return {
      pairs: this.pairs?.snapshot(now) ?? [],
      roles: this.roles?.snapshot(now) ?? [],
      addresses: this.addresses?.snapshot(now) ?? [],
    };
  }

  /** Counts kept from before a restart: see Windows.restore (a sort this policy does not count is ignored). */
  restore(w: TallyWindows, now: number): void {
    this.pairs?.restore(w.pairs, now);
    this.roles?.restore(w.roles, now);
    this.addresses?.restore(w.addresses, now);
  }

  /** Keys tracked now, per sort (for tests and the cap message). */
  tracked(): { pairs: number; roles: number; addresses: number } {
    return { pairs: this.pairs?.size ?? 0, roles: this.roles?.size ?? 0, addresses: this.addresses?.size ?? 0 };
  }

  private newLockout(kind: LockoutKind, f: AuthFailure, address: string | null, count: number, now: number, why = ''): NewLockout {
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
      reason: `${why}${count} failed logins ${who} within ${minutes(this.policy.windowMs)} (threshold ${n}; last: ${f.kind})`,
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

  /**
   * Record a new lockout in `d` (and in `active`, so later failures of its key are knocks on it),
   * taking the place of `replaces`; false when the cap (`wide`: the cap plus MAX_WIDE_LOCKOUTS) is reached.
   */
  private lock(d: Decision, active: Map<string, Lockout>, n: NewLockout, replaces: readonly Lockout[] = [], wide = false): boolean {
    const limit = MAX_ACTIVE_LOCKOUTS + (wide ? MAX_WIDE_LOCKOUTS : 0);
    if (active.size - replaces.length >= limit) {
      d.capped.push(`${limit} lockouts in force already: ${n.reason} is not locked until some expire`);
      return false;
    }
    const ids: string[] = [];
    for (const r of replaces) {
      const key = lockoutKey(r);
      active.delete(key);
      // one of this decision's own: it is dropped, and what it replaced is replaced by the new one
      const mine = r.id.startsWith('new:') ? d.lock.find((x) => lockoutKey(x) === key) : undefined;
      if (mine) d.lock = d.lock.filter((x) => x !== mine);
      ids.push(...(mine ? (mine.replaces ?? []) : r.id.startsWith('new:') ? [] : [r.id]));
    }
    if (ids.length) n.replaces = ids;
    d.lock.push(n);
    active.set(lockoutKey(n), recorded(n, `new:${lockoutKey(n)}`, []));
    return true;
  }

  /** The lockout in force that this failure runs into (its pair, its prefix, the role everywhere, a ban), if any. */
  private holding(active: Map<string, Lockout>, f: AuthFailure, address: string | null): { ban?: Lockout; held?: Lockout } {
    const net = address === null ? null : networkOf(address);
    const ban =
      address === null ? undefined : (active.get(keyOf('address_ban', null, address)) ?? active.get(keyOf('address_ban', null, net)));
    if (f.kind === 'role_missing') return { ban };
    if (this.policy.by === 'role') return { ban, held: active.get(keyOf('role', f.user, null)) };
    if (address === null) return { ban };
    const everywhere = EVERYWHERE[address.includes(':') ? 1 : 0];
    const held =
      active.get(keyOf('address', f.user, address)) ??
      active.get(keyOf('address', f.user, net)) ??
      active.get(keyOf('address', f.user, everywhere));
    return { ban, held };
  }

  /** N failures of the pair: its lockout, merged with the role's others in the prefix, or the role everywhere at the bounds. */
  private lockPair(d: Decision, active: Map<string, Lockout>, f: AuthFailure, address: string, n: number, now: number, self: Self): void {
    const net = networkOf(address);
    const mine = [...active.values()].filter((l) => l.kind === 'address' && l.role === f.user);
    const near = mine.filter((l) => !l.address!.includes('/') && covers(net, l.address!));
    if (near.length && !overlaps(net, this.ranges, self.roles.has(f.user) ? self.addresses : [])) {
      const sum = n + near.reduce((c, l) => c + l.count, 0);
      const why = `${near.length + 1} addresses of ${net}: `;
      if (this.lock(d, active, this.newLockout('address', f, net, sum, now, why), near)) return;
    }
    const full = active.size >= MAX_ACTIVE_LOCKOUTS;
    if (!full && mine.length < MAX_LOCKOUTS_PER_ROLE) {
      this.lock(d, active, this.newLockout('address', f, address, n, now));
      return;
    }
    const bound = full
      ? `the cap of ${MAX_ACTIVE_LOCKOUTS} lockouts in force (MAX_ACTIVE_LOCKOUTS) is reached`
      : `${JSON.stringify(f.user)} has ${mine.length} separate lockouts already (MAX_LOCKOUTS_PER_ROLE ${MAX_LOCKOUTS_PER_ROLE})`;
    if (EVERYWHERE.some((a) => refusesSelf(self, f.user, a))) {
      // the engine logs in as this role over TCP: the pair alone, past the cap
      d.capped.push(`${JSON.stringify(f.user)} is not locked from every address (${bound}): it ${SPARED} (its login role)`);
      this.lock(d, active, this.newLockout('address', f, address, n, now), [], true);
      return;
    }
    const why = `role-wide lockout: ${bound} and the role is still failing from new places; `;
    const wide = EVERYWHERE.map((a) => this.newLockout('address', f, a, n, now, why));
    // both lines or neither; the second takes the place of the role's others (they are inside it)
    if (active.size + 1 >= MAX_ACTIVE_LOCKOUTS + MAX_WIDE_LOCKOUTS) {
      d.capped.push(
        `${MAX_ACTIVE_LOCKOUTS + MAX_WIDE_LOCKOUTS} lockouts in force already: ${wide[0]!.reason} is not locked until some expire`,
      );
      return;
    }
    this.lock(d, active, wide[0]!, [], true);
    this.lock(d, active, wide[1]!, mine, true);
    d.capped.push(`warning: ${JSON.stringify(f.user)} is locked from every address until ${wide[0]!.until}: ${wide[0]!.reason}`);
  }

  /** M failures from the address: its ban, or at the cap a ban of its prefix (the address's other bans merged into it). */
  private lockBan(d: Decision, active: Map<string, Lockout>, f: AuthFailure, address: string, n: number, now: number, self: Self): void {
    if (refusesSelf(self, null, address)) {
      d.capped.push(`the ban of ${address} is not made: it ${SPARED} (it connects from there); its roles' pairs still lock`);
      return;
    }
    if (active.size < MAX_ACTIVE_LOCKOUTS) {
      this.lock(d, active, this.newLockout('address_ban', f, address, n, now));
      return;
    }
    const net = networkOf(address);
    if (overlaps(net, this.ranges, self.addresses)) {
      d.capped.push(
        `${MAX_ACTIVE_LOCKOUTS} lockouts in force already: the ban of ${address} is not widened to ${net}, which holds an excluded address or the engine's own`,
      );
      return;
    }
    const near = [...active.values()].filter((l) => l.kind === 'address_ban' && !l.address!.includes('/') && covers(net, l.address!));
    const sum = n + near.reduce((c, l) => c + l.count, 0);
    const why = `the cap of ${MAX_ACTIVE_LOCKOUTS} lockouts in force (MAX_ACTIVE_LOCKOUTS) is reached: the ban widened to ${net}; `;
    if (this.lock(d, active, this.newLockout('address_ban', f, net, sum, now, why), near, true))
      d.capped.push(`warning: every role from ${net} is refused until ${new Date(now + this.policy.forMs).toISOString()}: ${why}`);
  }

  private count(f: AuthFailure, t: number, now: number, active: Map<string, Lockout>, self: Self, d: Decision): void {
    const address = canonicalAddress(f.address);
    if (this.excluded.has(f.user)) return;
    if (address !== null && inRanges(address, this.ranges)) return;
    const { ban, held } = this.holding(active, f, address);
    if (ban) return this.knock(d, ban, f);
    const known = f.kind !== 'role_missing';
    if (held) this.knock(d, held, f);
    else if (this.pairs && known && this.policy.by === 'address' && address !== null && !hbaProblem(f.user)) {
      const n = this.pairs.add(keyOf(f.user, address), t);
      if (n !== null && refusesSelf(self, f.user, address))
        d.capped.push(`${JSON.stringify(f.user)} from ${address} is not locked: it ${SPARED} (its login role from its address)`);
      else if (n !== null) this.lockPair(d, active, f, address, n, now, self);
    } else if (this.roles && known && this.policy.by === 'role' && !roleNameProblem(f.user)) {
      const n = this.roles.add(f.user, t);
      if (n !== null && refusesSelf(self, f.user, null))
        d.capped.push(`${JSON.stringify(f.user)} is not set NOLOGIN: it ${SPARED} (its login role)`);
      // NOLOGIN is role-wide already: at the cap it is made all the same (fail closed)
      else if (n !== null) this.lock(d, active, this.newLockout('role', f, null, n, now), [], true);
    }
    if (this.addresses && address !== null) {
      const n = this.addresses.add(address, t);
      if (n !== null) this.lockBan(d, active, f, address, n, now, self);
    }
  }
}
