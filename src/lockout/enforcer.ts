// Making the nodes hold what the state directory says: each node's pg_hba.conf block written (and
// written again when it was removed by hand), the lines of ended lockouts taken out, `role`
// lockouts' NOLOGIN set on the primary with the sessions ended everywhere, and LOGIN given back at
// the end. The quick path, taken on every call while nothing changes, is a stat of the state file
// and a read of each local pg_hba.conf; the locks, the reload and the check only when an edit is due.
import { readFile } from 'node:fs/promises';
import { describeError } from '../errors.js';
import { appendAudit, type AuditOperator } from '../record/audit.js';
import { editHba, pendingEdit, type HbaMode, type HbaOutcome } from './apply-hba.js';
import { cutoffSince, endRoleSessions, lockRoleNow, loginBack, readRoles, type RoleRow } from './apply-role.js';
import { lockoutAuditEntry } from './audit.js';
import { blockRules } from './hba-block.js';
import { nodeFacts, type NodeFacts } from './node-facts.js';
import { readLockouts, storeStamp, updateLockouts } from './store.js';
import type { Lockout, LockoutClient, LockoutEvent, LockoutEventKind, LockoutNode } from './types.js';

export interface EnforcerConfig {
  nodes: readonly LockoutNode[];
  env?: NodeJS.ProcessEnv;
  /** One JSON line per lockout event (mode 0600). */
  auditLog?: string | null;
  /** Who acts, for audit lines (the database user is read per node). */
  operator: { osUser: string; host: string };
  /** The operator's words (unlock --reason), in audit lines. */
  note?: string | null;
  onEvent?: (e: LockoutEvent) => void;
  /** How often `role` lockouts are checked for LOGIN turned back on meanwhile (default 1 s). */
  recheckMs?: number;
  /**
   * Only the lockouts of `nodes` (ofNodes): guard's engines, one per cluster, share the state file.
   * Unlock leaves it off: it acts on the lockouts it is given, under whatever names its nodes have.
   */
  ownOnly?: boolean;
}

/**
 * Whether a lockout is one of these nodes' cluster's: its nodes (those of the engine that made it)
 * overlap them. One naming nodes of several clusters (made when one engine had them all) is each
 * of theirs; one naming none is everyone's.
 */
export function ofNodes(l: Pick<Lockout, 'nodes'>, names: ReadonlySet<string>): boolean {
  return !l.nodes.length || l.nodes.some((n) => names.has(n));
}

/** What one call changes in the state, per lockout id, applied in one locked update at its end. */
type Patch = Map<string, ((l: Lockout) => void)[]>;

interface Live {
  node: LockoutNode;
  client: LockoutClient;
  facts: NodeFacts;
}

/** One pass over the `role` lockouts: the primary they act on, every node (sessions end there), and the call's patch and events. */
interface RolePass {
  primary: Live;
  live: Live[];
  now: Date;
  patch: Patch;
  out: LockoutEvent[];
  /** Every lockout on file (a role's later lockout holds its LOGIN too). */
  list: readonly Lockout[];
  /** An unlock: LOGIN is given back now or never (it does not wait for a cutoff's restore). */
  unlocking: boolean;
}

const REPEAT_MS = 5000;

export class Enforcer {
  private list: Lockout[] = [];
  private stamp: string | null | undefined = undefined;
  private lastRecheck = 0;
  private readonly said = new Map<string, number>();
  /** Ended `role` lockouts whose LOGIN waits for a cutoff's restore (said once; looked at on rechecks only). */
  private readonly owed = new Set<string>();
  readonly env: NodeJS.ProcessEnv;
  private readonly names: ReadonlySet<string>;

  constructor(readonly cfg: EnforcerConfig) {
    this.env = cfg.env ?? process.env;
    this.names = new Set(cfg.nodes.map((n) => n.name));
  }

  /** Whether this enforcer acts on (and its engine counts against) the lockout. */
  mine(l: Pick<Lockout, 'nodes'>): boolean {
    return !this.cfg.ownOnly || ofNodes(l, this.names);
  }

  /** The lockouts on file (with ownOnly, those of its nodes), re-read only when the file changed. */
  async refresh(): Promise<Lockout[]> {
    const stamp = await storeStamp(this.env);
    if (stamp !== this.stamp) {
      this.list = (await readLockouts(this.env)).filter((l) => this.mine(l));
      this.stamp = stamp;
    }
    return this.list;
  }

  get lockouts(): readonly Lockout[] {
    return this.list;
  }

  /** An event for the caller (and, for a change, the audit log); a repeated failure is said once per REPEAT_MS. */
  event(
    out: LockoutEvent[],
    event: LockoutEventKind,
    now: Date,
    node: string | null,
    lockout: Lockout | null,
    detail: string,
    repeatMs = REPEAT_MS,
  ): void {
    if (event === 'failed' || event === 'cap') {
      const key = `${event}\n${node}\n${detail}`;
      const last = this.said.get(key);
      if (last !== undefined && now.getTime() - last < repeatMs) return;
      this.said.set(key, now.getTime());
      if (this.said.size > 1000) this.said.clear();
    }
    out.push({ event, time: now.toISOString(), node, lockout, detail });
  }

  /** The connected nodes and their facts; a node whose facts cannot be read is a failure, retried next time. */
  private async live(now: Date, out: LockoutEvent[]): Promise<Live[]> {
    const nodes = await Promise.all(
      this.cfg.nodes.map(async (node): Promise<Live | null> => {
        const client = node.client();
        if (!client) return null;
        try {
          return { node, client, facts: await nodeFacts(node, client) };
        } catch (err) {
          this.event(out, 'failed', now, node.name, null, describeError(err));
          return null;
        }
      }),
    );
    return nodes.filter((n): n is Live => n !== null);
  }

  /**
   * One pass over every connected node. `only`: act on these lockouts alone and only to end them
   * (unlock), leaving every other lockout, due or not, as it is.
   */
  async enforce(now: Date, only?: ReadonlySet<string>): Promise<LockoutEvent[]> {
    const out: LockoutEvent[] = [];
    let list = await this.refresh();
    if (!only && list.some((l) => !l.ended && Date.parse(l.until) <= now.getTime())) {
      await updateLockouts((cur) => {
        const due = cur.filter((l) => !l.ended && Date.parse(l.until) <= now.getTime());
        for (const l of due) l.ended = { at: now.toISOString(), why: 'expired' };
        return { list: due.length ? cur : null, result: null };
      }, this.env);
      list = await this.refresh();
    }
    const patch: Patch = new Map();
    const live = await this.live(now, out);
    await Promise.all(live.map((n) => this.hbaNode(n, list, now, patch, out, only)));
    await this.roles(live, list, now, patch, out, only);
    // ended before they took effect anywhere: nothing to take out, they leave the state (said, and audited)
    for (const l of list.filter((x) => x.ended && !x.applied.length && (!only || only.has(x.id))))
      this.event(out, l.ended!.why === 'unlock' ? 'unlocked' : 'expired', now, null, l, 'in force on no node: removed from the state');
    if (patch.size || list.some((l) => l.ended && !l.applied.length)) await this.commit(patch);
    await this.audit(out, live);
    for (const e of out) this.cfg.onEvent?.(e);
    return out;
  }

  private async hbaNode(n: Live, list: Lockout[], now: Date, patch: Patch, out: LockoutEvent[], only?: ReadonlySet<string>): Promise<void> {
    const name = n.node.name;
    const mine = list.filter((l) => l.kind !== 'role' && l.nodes.includes(name) && (!only || only.has(l.id)));
    const file = n.facts.hbaFile;
    if (!file) {
      if (mine.some((l) => !l.ended))
        this.event(out, 'failed', now, name, null, `lockouts cannot be written in pg_hba.conf here: ${n.facts.hbaWhy}`);
      return;
    }
    const mode: HbaMode = only ? { kind: 'remove', ids: only } : { kind: 'sync' };
    try {
      const quick = await pendingEdit(file, list, name, mode, now);
      if (!quick.edit && !mine.length) return;
      // lines in the file not yet recorded in force here (a pass whose reload timed out wrote them, or one
      // killed before it recorded them): verified as that pass would have, before they count as in force
      const inFile = new Set(blockRules(quick.content, file).map((r) => r.id));
      const unchecked = only ? [] : mine.filter((l) => !l.ended && inFile.has(l.id) && !l.applied.includes(name));
      const verify = unchecked.length > 0;
      const result: HbaOutcome | null =
        quick.edit || verify ? await editHba(n.node, n.client, file, mode, { env: this.env, now, verify }) : null;
      const present = result?.present ?? inFile;
      for (const l of mine) {
        const has = present.has(l.id);
        if (has !== l.applied.includes(name))
          add(patch, l.id, (x) => (x.applied = has ? [...new Set([...x.applied, name])] : x.applied.filter((a) => a !== name)));
      }
      if (result) this.hbaEvents(result, list, name, now, out, unchecked);
    } catch (err) {
      this.event(out, 'failed', now, name, null, `pg_hba.conf ${file}: ${describeError(err)}`);
    }
  }

  private hbaEvents(r: HbaOutcome, list: Lockout[], node: string, now: Date, out: LockoutEvent[], unchecked: readonly Lockout[]): void {
    const at = `${r.written}${r.written !== r.file ? ` (${r.file} links to it)` : ''}`;
    const where = `${at}; backup ${r.backup}; reloaded, checked in pg_hba_file_rules`;
    // written by an earlier pass, checked only now: in force from here on, said as the first pass would have
    for (const l of unchecked)
      if (r.present.has(l.id) && !r.added.includes(l.id))
        this.event(
          out,
          'lockout',
          now,
          node,
          l,
          `reject line in ${at} (written by an earlier pass that could not check it); reloaded, checked in pg_hba_file_rules`,
        );
    for (const id of r.added) {
      const l = list.find((x) => x.id === id);
      if (l)
        this.event(
          out,
          l.applied.includes(node) ? 'reapplied' : 'lockout',
          now,
          node,
          l,
          // a prefix or role-wide lockout says why (the audit line's detail): merged addresses, or the cap
          `reject line in ${where}${l.applied.includes(node) ? ' (it had been removed from the file)' : ''}${l.address?.includes('/') ? `: ${l.reason}` : ''}`,
        );
    }
    for (const id of r.removed) {
      const l = list.find((x) => x.id === id);
      if (l?.ended) this.event(out, l.ended.why === 'unlock' ? 'unlocked' : 'expired', now, node, l, `reject line removed from ${where}`);
    }
  }

  /** `role` lockouts, on the primary: apply the new ones, end the ended ones, and put NOLOGIN back where LOGIN was turned on meanwhile. */
  private async roles(
    live: Live[],
    list: Lockout[],
    now: Date,
    patch: Patch,
    out: LockoutEvent[],
    only?: ReadonlySet<string>,
  ): Promise<void> {
    const mine = list.filter((l) => l.kind === 'role' && (!only || only.has(l.id)));
    const recheck = !only && now.getTime() - this.lastRecheck >= (this.cfg.recheckMs ?? 1000);
    const due = mine.filter(
      (l) => (!l.ended && (!l.applied.length || recheck)) || (l.ended && l.applied.length && (recheck || !this.owed.has(l.id))),
    );
    if (!due.length) return;
    const primary = live.find((n) => !n.facts.standby);
    if (!primary) {
      this.event(out, 'failed', now, null, null, 'no primary is connected: role lockouts wait for one (ALTER ROLE runs there)');
      return;
    }
    if (recheck) this.lastRecheck = now.getTime();
    try {
      const rows = await readRoles(primary.client, [...new Set(due.map((l) => l.role!))]);
      const pass: RolePass = { primary, live, now, patch, out, list, unlocking: only !== undefined };
      for (const l of due) {
        const row = rows.get(l.role!);
        if (l.ended) await this.liftRole(l, row, pass);
        else if (!l.applied.length || (row?.can_login && row.oid === l.before?.oid)) await this.lockRole(l, row, pass);
      }
    } catch (err) {
      this.event(out, 'failed', now, primary.node.name, null, `role lockouts: ${describeError(err)}`);
    }
  }

  private async lockRole(l: Lockout, row: RoleRow | undefined, pass: RolePass): Promise<void> {
    const { primary, live, now, patch, out } = pass;
    const again = l.applied.length > 0;
    if (!row) {
      add(patch, l.id, (x) => (x.applied = [primary.node.name]));
      this.event(out, 'lockout', now, primary.node.name, l, 'the role does not exist: nothing to lock');
      return;
    }
    const { before, nologinSet } = await lockRoleNow(primary.client, row);
    const ended = await endRoleSessions(
      live.map((n) => n.client),
      row.oid,
    );
    // LOGIN turned on during the lockout comes back at its end: the role could log in then
    add(patch, l.id, (x) => {
      x.applied = [primary.node.name];
      // the first time, or LOGIN turned on by hand for a role that had none: the end gives back what it has now
      if (!again || (nologinSet && !x.nologinSet)) [x.before, x.nologinSet] = [before, nologinSet];
    });
    const what = nologinSet ? 'NOLOGIN set' : 'it was NOLOGIN already (left so at the end)';
    this.event(
      out,
      again ? 'reapplied' : 'lockout',
      now,
      primary.node.name,
      l,
      `${what}${again ? ' again: LOGIN had been turned back on' : ''}; ${ended} session(s) ended on ${live.length} node(s)`,
    );
  }

  private async liftRole(l: Lockout, row: RoleRow | undefined, pass: RolePass): Promise<void> {
    const { primary, live, now, patch, out } = pass;
    const contents = await Promise.all(live.map((n) => (n.facts.hbaFile ? readFile(n.facts.hbaFile, 'utf8').catch(() => '') : '')));
    const cutoff = await cutoffSince(l, this.env, contents);
    const later = pass.list.some((x) => x.kind === 'role' && x.role === l.role && !x.ended);
    // a cutoff since (or a later lockout of the role) is the only thing that holds LOGIN back: owed
    // until it is restored (restore gives back what the cutoff found, the lockout's NOLOGIN), then
    // given back here; never while it holds
    if (!pass.unlocking && (cutoff || later) && 'sql' in loginBack(l, row, null)) {
      const until = cutoff ? `${cutoff}; it comes back once that cutoff is restored` : 'a later lockout of the role is in force';
      if (!this.owed.has(l.id)) this.event(out, 'login_kept', now, primary.node.name, l, `LOGIN not given back yet: ${until}`);
      this.owed.add(l.id);
      return;
    }
    this.owed.delete(l.id);
    const back = loginBack(l, row, cutoff);
    if ('sql' in back) await primary.client.query({ text: back.sql });
    add(patch, l.id, (x) => (x.applied = []));
    const done = l.ended!.why === 'unlock' ? 'unlocked' : 'expired';
    if ('sql' in back) this.event(out, done, now, primary.node.name, l, `LOGIN given back (connection limit ${l.before!.connectionLimit})`);
    else this.event(out, 'login_kept', now, primary.node.name, l, `LOGIN not given back: ${back.kept}`);
  }

  /** The call's changes, on the lockouts as on file now; its ended lockouts in force nowhere any more leave the state. */
  private async commit(patch: Patch): Promise<void> {
    await updateLockouts((cur) => {
      for (const l of cur) for (const fn of patch.get(l.id) ?? []) fn(l);
      return { list: cur.filter((l) => !(l.ended && l.applied.length === 0 && this.mine(l))), result: null };
    }, this.env);
    await this.refresh();
  }

  private async audit(out: LockoutEvent[], live: Live[]): Promise<void> {
    const file = this.cfg.auditLog;
    if (!file) return;
    const dbUser = (node: string | null) => live.find((n) => n.node.name === node)?.facts.user ?? '';
    const operator = (node: string | null): AuditOperator => ({ dbUser: dbUser(node), ...this.cfg.operator });
    const entries = out.flatMap((e) => lockoutAuditEntry(e, operator(e.node), this.cfg.note) ?? []);
    try {
      await appendAudit(file, entries);
    } catch (err) {
      this.event(out, 'failed', new Date(), null, null, `could not write the audit log ${file}: ${describeError(err)}`);
    }
  }
}

function add(patch: Patch, id: string, fn: (l: Lockout) => void): void {
  patch.set(id, [...(patch.get(id) ?? []), fn]);
}
