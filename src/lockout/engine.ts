// The lockout engine of one cluster, the narrow API guard calls: `ingest` the authentication
// failures a tick read from the log (of any node: the attacker tries the standby next), then
// `enforce` (new lockouts in force, hand-removed blocks put back, ended ones taken out). A lockout
// made from one node's failures holds on every node of the cluster. The lockouts live in the state
// directory, written (fsync'd) as soon as one is made or expires. Knocks on lockouts in force only
// count what the attacker keeps trying, and the failure counts below the threshold change with
// every failure: under a flood every pass has some, so both are written at most every
// KNOCK_WRITE_MS, or at `flush` (stop); a SIGKILL loses at most that much of them. The counts
// (tally-store.ts) are restored at the first ingest, so a guard restart does not start them afresh.
import { describeError } from '../errors.js';
import type { AuthFailure } from '../serverlog/types.js';
import { Enforcer, type EnforcerConfig } from './enforcer.js';
import { readRoles } from './apply-role.js';
import { nodeFacts } from './node-facts.js';
import { lockoutKey, recorded, Tally, type NewLockout, type Self } from './policy.js';
import { newLockoutId, updateLockouts } from './store.js';
import { readTally, tallyOf, writeTally } from './tally-store.js';
import type { Lockout, LockoutEvent, LockoutPolicy } from './types.js';

export interface EngineConfig extends EnforcerConfig {
  policy: LockoutPolicy;
}

const CAP_REPEAT_MS = 60_000;
/** Knocks alone are written at most this often (docs/lockouts.md). */
export const KNOCK_WRITE_MS = 5_000;

type Knocks = Map<string, { count: number; last: string }>;

/** `into` plus `more`, as a new map (the pending knocks change only once written). */
function addKnocks(into: Knocks, more: Knocks): Knocks {
  const out: Knocks = new Map([...into].map(([id, k]) => [id, { ...k }]));
  for (const [id, k] of more) {
    const had = out.get(id);
    if (!had) out.set(id, { ...k });
    else [had.count, had.last] = [had.count + k.count, Date.parse(k.last) > Date.parse(had.last) ? k.last : had.last];
  }
  return out;
}

export class LockoutEngine {
  private readonly tally: Tally;
  private readonly enforcer: Enforcer;
  private readonly self = { roles: new Set<string>(), addresses: new Set<string>() };
  /** Knocks on stored lockouts not written yet, and when knocks were last written. */
  private knocks: Knocks = new Map();
  private knocksWritten = 0;
  /** Whether the counts on file were restored (at the first ingest), and the tally's changes when last written. */
  private restored = false;
  private tallySaved = 0;
  private tallyWritten = 0;

  constructor(readonly cfg: EngineConfig) {
    this.tally = new Tally(cfg.policy);
    // the clusters' engines share the state file: each counts against, and enforces, its own lockouts alone
    this.enforcer = new Enforcer({ ...cfg, ownOnly: true });
  }

  /** The lockouts as last read from the state directory. */
  lockouts(): readonly Lockout[] {
    return this.enforcer.lockouts;
  }

  /** Keys counted now, per sort (bounded: src/lockout/policy.ts). */
  tracked(): ReturnType<Tally['tracked']> {
    return this.tally.tracked();
  }

  /** Who the engine is on each connected node: never locked out (learned once per connection). */
  private async learnSelf(): Promise<Self> {
    await Promise.all(
      this.cfg.nodes.map(async (node) => {
        const client = node.client();
        if (!client) return;
        const facts = await nodeFacts(node, client).catch(() => null);
        if (!facts) return;
        this.self.roles.add(facts.user);
        if (facts.address) this.self.addresses.add(facts.address);
      }),
    );
    return this.self;
  }

  /**
   * The new lockouts, less those of a role that does not exist. Only a password failure's DETAIL
   * says a role is unknown; a reject line, a missing pg_hba.conf entry or LDAP fails before the
   * role is looked up, so invented names would fill pg_hba.conf and the cap. Asked of the first
   * node that answers (roles are cluster-wide); none answering: kept.
   */
  private async ofRealRoles(lock: NewLockout[]): Promise<NewLockout[]> {
    const names = [...new Set(lock.flatMap((n) => (n.kind === 'address_ban' ? [] : [n.role!])))];
    if (!names.length) return lock;
    for (const node of this.cfg.nodes) {
      const client = node.client();
      if (!client) continue;
      const roles = await readRoles(client, names).catch(() => null);
      if (roles) return lock.filter((n) => n.kind === 'address_ban' || roles.has(n.role!));
    }
    return lock;
  }

  /**
   * Count the failures and record the lockouts they make (and the knocks on those in force) in the
   * state directory; returns the new lockouts. They take effect at the next `enforce`.
   */
  async ingest(failures: readonly AuthFailure[], now: Date = new Date()): Promise<Lockout[]> {
    const self = await this.learnSelf();
    const list = await this.enforcer.refresh();
    await this.restoreTally(now);
    try {
      return await this.count(failures, list, now, self);
    } finally {
      await this.saveTally(now, false);
    }
  }

  /** The counts kept before a restart, once; a file refused is said (counting starts afresh), never fatal. */
  private async restoreTally(now: Date): Promise<void> {
    if (this.restored) return;
    this.restored = true;
    try {
      const entries = await readTally(this.enforcer.env);
      this.tally.restore(
        tallyOf(
          entries,
          this.cfg.nodes.map((n) => n.name),
        ),
        now.getTime(),
      );
    } catch (err) {
      this.warn(now, `the failure counts kept before the restart were not restored: ${describeError(err)}; counting starts afresh`);
    }
    this.tallySaved = this.tally.changes();
  }

  /** The counts, written when they changed, at most every KNOCK_WRITE_MS (`force`: at stop); a failure is said, never fatal. */
  private async saveTally(now: Date, force: boolean): Promise<void> {
    const changes = this.tally.changes();
    if (changes === this.tallySaved || (!force && now.getTime() - this.tallyWritten < KNOCK_WRITE_MS)) return;
    const entry = { nodes: this.cfg.nodes.map((n) => n.name), windowMs: this.cfg.policy.windowMs, written: now.toISOString() };
    try {
      await writeTally({ ...entry, ...this.tally.snapshot(now.getTime()) }, now.getTime(), this.enforcer.env);
      this.tallySaved = changes;
      this.tallyWritten = now.getTime();
    } catch (err) {
      this.warn(now, `the failure counts could not be written (a restart would start them afresh): ${describeError(err)}`);
    }
  }

  private warn(now: Date, detail: string): void {
    const events: LockoutEvent[] = [];
    this.enforcer.event(events, 'failed', now, null, null, detail);
    for (const e of events) this.cfg.onEvent?.(e);
  }

  private async count(failures: readonly AuthFailure[], list: readonly Lockout[], now: Date, self: Self): Promise<Lockout[]> {
    // the counts are kept only once what they made is written: a throw before then undoes them, so
    // that guard handing the same failures over again (it retries a pass that threw) counts them once
    this.tally.begin();
    let added: Lockout[];
    try {
      const d = this.tally.decide(failures, list, now.getTime(), self);
      const events: LockoutEvent[] = [];
      for (const c of d.capped) this.enforcer.event(events, 'cap', now, null, null, c, CAP_REPEAT_MS);
      for (const e of events) this.cfg.onEvent?.(e);
      d.lock = await this.ofRealRoles(d.lock);
      const knocks = addKnocks(this.knocks, d.knocks);
      if (!d.lock.length && !d.expire.length && (!knocks.size || now.getTime() - this.knocksWritten < KNOCK_WRITE_MS)) {
        this.tally.settle(false);
        this.knocks = knocks;
        return [];
      }
      added = await this.write(d.lock, knocks, d.expire, now);
    } catch (err) {
      this.tally.settle(true);
      throw err;
    }
    this.tally.settle(false);
    this.knocks = new Map();
    this.knocksWritten = now.getTime();
    // written: this read only refreshes the copy (enforce reads the file again, and says a failure)
    await this.enforcer.refresh().catch(() => undefined);
    return added;
  }

  /** The counts and knocks not written yet, written (guard's stop). */
  async flush(now: Date = new Date()): Promise<void> {
    await this.saveTally(now, true);
    if (!this.knocks.size) return;
    await this.write([], this.knocks, [], now);
    this.knocks = new Map();
    this.knocksWritten = now.getTime();
    await this.enforcer.refresh();
  }

  /** One locked update of the state: the new lockouts (those merged into them ended), the knocks, the expired. */
  private write(lock: NewLockout[], knocks: Knocks, expire: readonly string[], now: Date): Promise<Lockout[]> {
    const nodes = this.cfg.nodes.map((n) => n.name);
    return updateLockouts((cur) => {
      const active = new Map(cur.filter((l) => !l.ended && this.enforcer.mine(l)).map((l) => [lockoutKey(l), l]));
      const made: Lockout[] = [];
      for (const { replaces, ...n } of lock) {
        // another engine of this cluster (a second guard) may have made it meanwhile; another cluster's does not count
        if (active.has(lockoutKey(n))) continue;
        // the lockouts merged into it end as it is recorded: the next enforcement writes it in their place, in one edit
        for (const old of cur) if (replaces?.includes(old.id) && !old.ended) old.ended = { at: now.toISOString(), why: 'merged' };
        const l = recorded(n, newLockoutId(), nodes);
        cur.push(l);
        active.set(lockoutKey(l), l);
        made.push(l);
      }
      for (const [id, k] of knocks) {
        const l = id.startsWith('new:') ? active.get(id.slice(4)) : cur.find((x) => x.id === id);
        if (!l) continue;
        l.knocks += k.count;
        if (!l.lastKnock || Date.parse(k.last) > Date.parse(l.lastKnock)) l.lastKnock = k.last;
      }
      for (const l of cur) if (expire.includes(l.id) && !l.ended) l.ended = { at: now.toISOString(), why: 'expired' };
      return { list: cur, result: made };
    }, this.enforcer.env);
  }

  /** Make every connected node hold the lockouts: see src/lockout/enforcer.ts. */
  enforce(now: Date = new Date()): Promise<LockoutEvent[]> {
    return this.enforcer.enforce(now);
  }
}
