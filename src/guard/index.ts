// pgrevoke guard as a library: one loop per node, each tick one statement that finds and terminates
// every session that must end (src/guard/sql.ts). Never touches console or process: everything it
// has to say is an event; the CLI layer (src/commands/guard.ts) renders events and owns signals.
import { promises as fs } from 'node:fs';
import { ExitCode, PgrevokeError, usageError } from '../errors.js';
import { connect as pgConnect } from '../pg/connect.js';
import type { ConnParams, TargetNode } from '../pg/conninfo.js';
import { queryText, redact } from '../pg/redact.js';
import { checkOutputs } from '../record/safe-write.js';
import { appendAudit, type AuditEntry, type AuditOperator, type AuditReason } from '../report/audit.js';
import type { AuditSession } from '../sessions/kill.js';
import { isConnectionLoss, isLockTimeout, lockTimeoutMs, REPEAT_MS, type Blind } from './failures.js';
import { DEFAULT_MAX_BLIND_MS, parseDenyFile } from './options.js';
import {
  GUARD_PREPARED,
  GUARD_SETUP,
  guardTick,
  guardUnblock,
  NO_TIMEOUTS,
  parseRoleKey,
  rollbackPrepared,
  type GuardPreparedRow,
  type GuardReason,
  type GuardRow,
  type GuardRules,
  type GuardSetupRow,
  type GuardUnblockRow,
  type KnownRole,
  type TimeoutRules,
} from './sql.js';
import { DATA_DIRECTORY_SQL, signalBackends, type ServerHome } from '../pg/local-signal.js';
import {
  describeHolder,
  describePrepared,
  endableOids,
  endReason,
  holderKill,
  preparedRollback,
  preparedVerdict,
  rollbackAuditEntry,
} from './unblock.js';

/** The part of a pg Client the guard uses (a fake one in unit tests). */
export interface GuardClient {
  query<R extends object>(config: { name?: string; text: string; values?: unknown[]; query_timeout?: number }): Promise<{ rows: R[] }>;
  end(): Promise<void>;
  /** pg reports a connection that dies between statements here (57P01 on a restart...). */
  on?(event: 'error', listener: (err: Error) => void): unknown;
}

/** A node's name and its connection parameters (resolveTargets in src/fleet/targets.ts). */
export type GuardNode = TargetNode;

export interface GuardConfig {
  nodes: readonly GuardNode[];
  /** --deny names (the deny file's names are added to them). */
  deny: readonly string[];
  denyFile: string | null;
  exclude: readonly string[];
  idle: TimeoutRules;
  idleInTransaction: TimeoutRules;
  intervalMs: number;
  dryRun: boolean;
  auditLog: string | null;
  /** Who runs the guard, for audit lines (the database user is read per node). */
  operator: { osUser: string; host: string };
  /** Reconnect delays: doubling from minMs, capped at maxMs. */
  backoff?: { minMs: number; maxMs: number };
  /** Client-side limit for one statement (the server-side statement_timeout is 5 s). */
  queryTimeoutMs?: number;
  /** A node whose tick keeps failing (connected, not blocked by a lock) this long ends run() with exit 3; 0: never. Default 30 s. */
  maxBlindMs?: number;
  /** Injected in unit tests; default: src/pg/connect.ts. */
  connect?: (p: ConnParams) => Promise<GuardClient>;
}

/** One session the guard ended, would end (dry run) or may not end (permissions). */
export interface GuardKill {
  time: string;
  node: string;
  pid: number;
  role: string | null;
  usesysid: number;
  database: string | null;
  client: string | null;
  application: string | null;
  backendType: string | null;
  state: string | null;
  backendStart: string | null;
  reason: AuditReason;
  detail: string;
  query: string | null;
  terminated: boolean;
  dryRun: boolean;
}

/** A prepared transaction the guard rolled back, or would roll back (dry run), because it held a lock its tick needs. */
export interface GuardRollback {
  time: string;
  node: string;
  gid: string;
  /** The owner (the role that prepared it), as the guard remembers it. */
  role: string | null;
  usesysid: number;
  databaseOid: number;
  prepared: string | null;
  /** e.g. `AccessExclusiveLock on pg_authid`. */
  locks: string;
  reason: AuditReason;
  detail: string;
  rolledBack: boolean;
  dryRun: boolean;
}

export type GuardEvent =
  | { type: 'kill'; kill: GuardKill }
  | { type: 'rollback'; rollback: GuardRollback }
  | { type: 'denied'; kill: GuardKill; message: string }
  | { type: 'connected'; node: string; user: string; version: string; standby: boolean; superuser: boolean; afterFailures: number }
  | { type: 'reconnecting'; node: string; error: string; lost: boolean; attempt: number; delayMs: number }
  | { type: 'reloaded'; source: 'signal' | 'file'; deny: number; added: string[]; removed: string[] }
  | { type: 'warning'; node: string | null; message: string }
  | { type: 'info'; node: string | null; message: string }
  | { type: 'error'; node: string | null; message: string };

export type GuardListener = (e: GuardEvent) => void;

export interface PassResult {
  node: string;
  /** Sessions reported (killed, would be killed, or could not be killed). */
  found: number;
  error: PgrevokeError | null;
}

/** The audit line of a guard action: the shared entry plus the session it ended. */
export type GuardAuditEntry = AuditEntry & {
  session: AuditSession & { usesysid: number; state: string | null; backendType: string | null; backendStart: string | null };
};

/** SQLSTATEs that at start mean "the configuration is wrong", not "the server is not there yet". */
const FATAL_AT_START = new Set(['28P01', '28000', '3D000', '42501']);

export function isFatalAtStart(err: unknown): boolean {
  return err instanceof PgrevokeError && err.sqlstate !== undefined && FATAL_AT_START.has(err.sqlstate);
}

export function backoffDelay(attempt: number, minMs = 100, maxMs = 5000): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(attempt, 20));
}

function fmtSeconds(s: number): string {
  return Number.isInteger(s) ? `${s}s` : `${s.toFixed(s < 10 ? 1 : 0)}s`;
}

/** A tick row that has a reason (the others only tell the guard about a role). */
type ReasonRow = GuardRow & { reason: GuardReason; pid: number };

/** Why, in words, for the audit line and the human output. */
export function describeReason(r: ReasonRow): string {
  switch (r.reason) {
    case 'role_dropped':
      return `role oid ${r.usesysid} no longer exists (dropped)`;
    case 'role_nologin':
      return 'role has NOLOGIN';
    case 'role_expired':
      return `role VALID UNTIL ${r.valid_until ?? '?'} has passed`;
    case 'denylisted':
      return 'role is on the deny list';
    case 'idle_timeout': {
      const where = r.limit_source === 'role' ? `role ${JSON.stringify(r.role)}` : `database ${JSON.stringify(r.database)}`;
      return `${r.state ?? 'idle'} for ${fmtSeconds(r.idle_seconds ?? 0)}, limit ${fmtSeconds(r.limit_seconds ?? 0)} (${where})`;
    }
  }
}

export function toKill(r: ReasonRow, node: string, time: string, dryRun: boolean): GuardKill {
  return {
    time,
    node,
    pid: r.pid,
    role: r.role,
    usesysid: Number(r.usesysid),
    database: r.database,
    client: r.client,
    application: r.application,
    backendType: r.backend_type,
    state: r.state,
    backendStart: r.backend_start,
    reason: r.reason,
    detail: describeReason(r),
    query: queryText(r.query),
    terminated: r.terminated,
    dryRun,
  };
}

export function guardAuditEntry(k: GuardKill, operator: AuditEntry['operator'], result: 'done' | 'denied', note?: string): GuardAuditEntry {
  return {
    time: k.time,
    node: k.node,
    operator,
    // the login role; '' when it was dropped (no role has an empty name): usesysid says which it was
    target: k.role ?? '',
    action: 'terminate',
    reason: k.reason,
    result,
    detail: note ? `${k.detail}; ${note}` : k.detail,
    session: {
      pid: k.pid,
      user: k.role,
      usesysid: k.usesysid,
      database: k.database,
      client: k.client,
      application: k.application,
      state: k.state,
      backendType: k.backendType,
      backendStart: k.backendStart,
      query: k.query,
    },
  };
}

function deniedMessage(k: GuardKill): string {
  if (k.role === null) return 'permission denied: the session of a dropped role takes a superuser or a member of pg_signal_backend';
  const role = JSON.stringify(k.role);
  return `permission denied: a session of role ${role} takes a superuser, a member of ${role} or of pg_signal_backend (a superuser's session: a superuser)`;
}

function errText(err: unknown): string {
  const e = err as { message?: string; sqlstate?: string; code?: string };
  const code = e.sqlstate ?? (e.code && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined);
  return redact(`${e.message ?? String(err)}${code ? ` [SQLSTATE ${code}]` : ''}`);
}

interface NodeState {
  node: GuardNode;
  client: GuardClient | null;
  connectedOnce: boolean;
  failures: number;
  user: string;
  /** What ended the connection while no statement ran (the next one only says "not queryable"). */
  lostWith: unknown;
  /** `pid:backend_start` of sessions already reported, mapped to what was reported. */
  seen: Map<string, string>;
  /** Roles of the sessions seen, by OID: what the guard knows when pg_authid is locked. */
  roles: Map<string, KnownRole>;
  superuser: boolean;
  signalBackend: boolean;
  blind: Blind | null;
  /** What was last said about a blocked tick, and when (said again when it changes, or every REPEAT_MS); since when blocked. */
  blocked: { text: string; atMs: number; sinceMs: number } | null;
}

/** Roles remembered per node at most; past that the memory starts afresh (it refills within a tick). */
const MAX_KNOWN_ROLES = 10_000;

export class Guard {
  private readonly cfg: GuardConfig;
  private readonly emit: GuardListener;
  private fileDeny: string[] = [];
  private fileStamp = '';
  private lastFileCheck = 0;
  private fileCheck: Promise<void> | null = null;
  private stopped = false;
  private stopWaiters = new Set<() => void>();
  private auditChain: Promise<void> = Promise.resolve();
  private running: Promise<void> | null = null;

  constructor(cfg: GuardConfig, listener: GuardListener) {
    this.cfg = cfg;
    this.emit = (e) => {
      try {
        listener(e);
      } catch {
        /* a listener's failure must not stop the guard */
      }
    };
    if (cfg.nodes.length === 0) throw usageError('nothing to guard: no node given');
  }

  /** The rules in force now: --deny plus the deny file as last read. */
  rules(): GuardRules {
    return {
      deny: [...new Set([...this.cfg.deny, ...this.fileDeny])],
      exclude: this.cfg.exclude,
      idle: this.cfg.idle ?? NO_TIMEOUTS,
      idleInTransaction: this.cfg.idleInTransaction ?? NO_TIMEOUTS,
    };
  }

  /** Check what can be checked before touching a server: the deny file reads, the audit log opens. */
  async init(): Promise<void> {
    // a deny file that cannot be read, or holds a name that cannot be a role, is exit 2 at start
    if (this.cfg.denyFile) await this.readDenyFile();
    await checkOutputs([{ flag: '--audit-log', file: this.cfg.auditLog, append: true }]);
  }

  /** Read and check the whole deny file; on any problem (a usage error) the names in force stay. */
  private async readDenyFile(): Promise<{ added: string[]; removed: string[] }> {
    const file = this.cfg.denyFile!;
    let st: Awaited<ReturnType<typeof fs.stat>>;
    let data: Buffer;
    try {
      st = await fs.stat(file);
      data = await fs.readFile(file);
    } catch (err) {
      throw usageError(`cannot read the deny file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    // a file refused is refused once: the change check must not report it again at the next tick
    this.fileStamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    const names = parseDenyFile(data, `deny file ${file}`);
    const added = names.filter((n) => !this.fileDeny.includes(n));
    const removed = this.fileDeny.filter((n) => !names.includes(n));
    this.fileDeny = names;
    return { added, removed };
  }

  /** Re-read the deny file now (SIGHUP). A file that cannot be read keeps the names last read. */
  async reload(source: 'signal' | 'file' = 'signal'): Promise<void> {
    if (!this.cfg.denyFile) {
      this.emit({ type: 'reloaded', source, deny: this.rules().deny.length, added: [], removed: [] });
      return;
    }
    try {
      const { added, removed } = await this.readDenyFile();
      this.emit({ type: 'reloaded', source, deny: this.rules().deny.length, added, removed });
    } catch (err) {
      this.emit({ type: 'error', node: null, message: `reload refused: ${(err as Error).message}; ${this.keeping()}` });
    }
  }

  private keeping(): string {
    const shown = this.fileDeny.slice(0, 5).map((n) => JSON.stringify(n));
    if (this.fileDeny.length > shown.length) shown.push('...');
    return `keeping the ${this.fileDeny.length} name(s) read before${shown.length ? ` (${shown.join(', ')})` : ''}`;
  }

  /** At most once per interval, whatever the number of nodes: reload when the file changed. */
  private refreshDenyFile(): Promise<void> {
    const file = this.cfg.denyFile;
    if (!file) return Promise.resolve();
    if (this.fileCheck) return this.fileCheck;
    if (Date.now() - this.lastFileCheck < this.cfg.intervalMs) return Promise.resolve();
    this.lastFileCheck = Date.now();
    this.fileCheck = (async () => {
      try {
        const st = await fs.stat(file);
        const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
        if (stamp !== this.fileStamp) {
          // a file that changed but cannot be read is reported once, not at every tick
          this.fileStamp = stamp;
          await this.reload('file');
        }
      } catch (err) {
        const stamp = `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
        if (this.fileStamp !== stamp) {
          this.fileStamp = stamp;
          this.emit({
            type: 'error',
            node: null,
            message: `cannot read the deny file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; ${this.keeping()}`,
          });
        }
      } finally {
        this.fileCheck = null;
      }
    })();
    return this.fileCheck;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.stopWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopWaiters.add(done);
    });
  }

  private async open(n: NodeState): Promise<void> {
    const connect = this.cfg.connect ?? ((p: ConnParams) => pgConnect(p) as Promise<GuardClient>);
    const pending = connect(n.node.params);
    // stop() must not wait for a connect to a black-holed host
    let onStop: () => void = () => undefined;
    const stoppedWhile = new Promise<null>((resolve) => {
      onStop = () => resolve(null);
      this.stopWaiters.add(onStop);
    });
    let client: GuardClient | null;
    try {
      client = await Promise.race([pending, stoppedWhile]);
    } finally {
      this.stopWaiters.delete(onStop);
    }
    if (client === null) {
      pending.then((c) => c.end()).catch(() => undefined);
      return;
    }
    try {
      const { rows } = await client.query<GuardSetupRow>({
        text: GUARD_SETUP,
        values: [`${lockTimeoutMs(this.cfg.intervalMs)}ms`],
        query_timeout: this.queryTimeout(),
      });
      const s = rows[0]!;
      // prepared now, while nothing is locked: under a catalog lock they must run without parsing
      await client.query({ ...guardUnblock(this.cfg), values: [[]], query_timeout: this.queryTimeout() });
      await client.query({ ...GUARD_PREPARED, query_timeout: this.queryTimeout() });
      n.user = s.user;
      n.superuser = s.superuser;
      n.signalBackend = s.signal_backend;
      if (!n.connectedOnce) {
        if (!s.superuser && !s.read_all_stats)
          this.emit({
            type: 'warning',
            node: n.node.name,
            message: `${s.user} is neither superuser nor a member of pg_read_all_stats: other roles' sessions show no state, so idle timeouts cannot apply to them`,
          });
        if (!s.superuser && !s.signal_backend)
          this.emit({
            type: 'warning',
            node: n.node.name,
            message: `${s.user} is neither superuser nor a member of pg_signal_backend: it can terminate only sessions of roles it is a member of`,
          });
        else if (!s.superuser)
          this.emit({
            type: 'warning',
            node: n.node.name,
            message: `${s.user} is not a superuser: superusers' sessions cannot be terminated (they are reported as denied)`,
          });
      }
      this.emit({
        type: 'connected',
        node: n.node.name,
        user: s.user,
        version: s.version,
        standby: s.standby,
        superuser: s.superuser,
        afterFailures: n.failures,
      });
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    n.lostWith = null;
    client.on?.('error', (err) => (n.lostWith ??= err));
    n.client = client;
    n.connectedOnce = true;
    n.failures = 0;
    n.seen.clear();
  }

  private queryTimeout(): number {
    return this.cfg.queryTimeoutMs ?? Math.max(10_000, 5 * this.cfg.intervalMs);
  }

  private async drop(n: NodeState): Promise<void> {
    const c = n.client;
    n.client = null;
    if (c) await c.end().catch(() => undefined);
  }

  private audit(entries: AuditEntry[]): void {
    const file = this.cfg.auditLog;
    if (!file || entries.length === 0) return;
    this.auditChain = this.auditChain.then(() =>
      appendAudit(file, entries).then(
        // what appendAudit has to say (a log it had to tighten), when it says anything
        (note: string | null | void) => void (typeof note === 'string' && this.emit({ type: 'warning', node: null, message: note })),
        (err) => this.emit({ type: 'error', node: null, message: `could not write the audit log ${file}: ${(err as Error).message}` }),
      ),
    );
  }

  /** One pass on one connected node: one statement; returns how many sessions it reported. */
  private async tick(n: NodeState): Promise<number> {
    await this.refreshDenyFile();
    const known = [...n.roles.values()].map((r) => r.key);
    const q = guardTick(this.rules(), { dryRun: this.cfg.dryRun, known });
    const { rows: all } = await n.client!.query<GuardRow>({ ...q, query_timeout: this.queryTimeout() });
    this.learn(n, all);
    const rows = all.filter((r): r is ReasonRow => r.reason !== null);
    const time = new Date().toISOString();
    const seen = new Map<string, string>();
    const entries: GuardAuditEntry[] = [];
    const operator = this.operator(n);
    let reported = 0;
    for (const r of rows) {
      const key = `${r.pid}:${r.backend_start ?? ''}`;
      const kill = toKill(r, n.node.name, time, this.cfg.dryRun);
      const what = this.cfg.dryRun ? `dry:${r.reason}` : !r.may_signal ? 'denied' : r.terminated ? 'killed' : 'gone';
      // a backend still exiting is signalled again, but reported once; one that exited before the
      // signal (pg_terminate_backend false) is not an action at all
      const before = n.seen.get(key);
      if (what !== 'gone') seen.set(key, before === 'killed' ? 'killed' : what);
      if (what === 'gone' || before === what || (before === 'killed' && what !== 'denied')) continue;
      reported++;
      if (what === 'denied') {
        const message = deniedMessage(kill);
        this.emit({ type: 'denied', kill, message });
        if (!this.cfg.dryRun) entries.push(guardAuditEntry(kill, operator, 'denied', message));
      } else {
        this.emit({ type: 'kill', kill });
        if (!this.cfg.dryRun) entries.push(guardAuditEntry(kill, operator, 'done'));
      }
    }
    n.seen = seen;
    this.audit(entries);
    return reported;
  }

  private learn(n: NodeState, rows: readonly GuardRow[]): void {
    if (n.roles.size > MAX_KNOWN_ROLES) n.roles.clear();
    for (const r of rows) n.roles.set(r.usesysid, parseRoleKey(r.role_key));
  }

  private newNode(node: GuardNode): NodeState {
    return {
      node,
      client: null,
      connectedOnce: false,
      failures: 0,
      user: '',
      lostWith: null,
      seen: new Map(),
      roles: new Map(),
      superuser: false,
      signalBackend: false,
      blind: null,
      blocked: null,
    };
  }

  private operator(n: NodeState): AuditOperator {
    return { dbUser: n.user, osUser: this.cfg.operator.osUser, host: this.cfg.operator.host };
  }

  /**
   * The tick timed out on a lock: end the sessions holding locks on system catalogs whose roles
   * are revoked or denied (by what the guard remembers of them), roll back such prepared
   * transactions, and say who holds what.
   */
  private async unblock(n: NodeState): Promise<void> {
    const rules = this.rules();
    const sessions = await this.endSessionHolders(n, rules);
    const prepared = await this.endPreparedHolders(n, rules);
    const held = [
      ...(sessions.length ? [`sessions holding catalog locks: ${sessions.join('; ')}`] : []),
      ...(prepared.length ? [`prepared transactions holding catalog locks: ${prepared.join('; ')}`] : []),
    ];
    const now = Date.now();
    const sinceMs = n.blocked?.sinceMs ?? now;
    const maxMs = this.cfg.maxBlindMs ?? DEFAULT_MAX_BLIND_MS;
    // exiting would not help: a restarted guard could not log in while pg_authid is locked
    const long =
      maxMs > 0 && now - sinceMs >= maxMs
        ? `; blocked longer than --max-blind (${maxMs / 1000} s): guard keeps running, since a guard that exits could not log back in while the lock is held`
        : '';
    const text = `tick blocked by a lock (lock_timeout ${lockTimeoutMs(this.cfg.intervalMs)} ms, SQLSTATE 55P03); ${
      held.length ? held.join('; ') : 'no session or prepared transaction holds a lock on a system catalog'
    }${long}`;
    if (n.blocked?.text !== text || now - n.blocked.atMs >= REPEAT_MS) {
      n.blocked = { text, atMs: now, sinceMs };
      this.emit({ type: 'error', node: n.node.name, message: text });
    }
  }

  /** The sessions holding catalog locks: those of revoked or denied roles ended; each said. */
  private async endSessionHolders(n: NodeState, rules: GuardRules): Promise<string[]> {
    const oids = endableOids(n.roles, rules, n);
    const rows = await this.endHolders(n, oids);
    const time = new Date().toISOString();
    const operator = this.operator(n);
    const entries: GuardAuditEntry[] = [];
    const said: string[] = [];
    for (const h of rows) {
      const role = h.usesysid === null ? undefined : n.roles.get(h.usesysid);
      const why = role ? endReason(role, rules) : null;
      if (!role || !why) {
        said.push(describeHolder(h, role, role ? 'not revoked nor denied: left alone' : 'left alone'));
        continue;
      }
      const kill = holderKill(h, role, why, n.node.name, time, this.cfg.dryRun);
      const key = `${h.pid}:${h.backend_start ?? ''}`;
      const ended = this.cfg.dryRun ? 'would be ended (dry run)' : h.terminated ? 'ended' : "may not be ended by the guard's role";
      said.push(describeHolder(h, role, ended));
      if (n.seen.get(key) === 'killed' || (!h.terminated && !this.cfg.dryRun)) continue;
      n.seen.set(key, 'killed');
      this.emit({ type: 'kill', kill });
      if (!this.cfg.dryRun) entries.push(guardAuditEntry(kill, operator, 'done'));
    }
    this.audit(entries);
    return said;
  }

  /**
   * The prepared transactions holding catalog locks (no session holds their locks: guardUnblock
   * cannot see them): those preparedVerdict allows rolled back, each said. A dry run only says.
   */
  private async endPreparedHolders(n: NodeState, rules: GuardRules): Promise<string[]> {
    const { rows } = await n.client!.query<GuardPreparedRow>({ ...GUARD_PREPARED, query_timeout: this.queryTimeout() });
    const said: string[] = [];
    for (const p of rows) {
      const role = n.roles.get(p.owner);
      const v = preparedVerdict(p, role, rules, n);
      if (!v.rollback) {
        said.push(describePrepared(p, role, v.said));
        continue;
      }
      const failed = this.cfg.dryRun ? null : await this.rollbackPrepared(n, p.gid);
      said.push(describePrepared(p, role, this.cfg.dryRun ? 'would be rolled back (dry run)' : (failed ?? 'rolled back')));
      const key = `prepared:${p.gid}:${p.prepared ?? ''}`;
      if (failed || n.seen.has(key)) continue;
      n.seen.set(key, 'killed');
      const rollback = preparedRollback(p, role!, v.why, n.node.name, new Date().toISOString(), this.cfg.dryRun);
      this.emit({ type: 'rollback', rollback });
      if (!this.cfg.dryRun) this.audit([rollbackAuditEntry(rollback, this.operator(n))]);
    }
    return said;
  }

  /** ROLLBACK PREPARED; null when done, else what failed (a lost connection is thrown). */
  private async rollbackPrepared(n: NodeState, gid: string): Promise<string | null> {
    try {
      await n.client!.query({ text: rollbackPrepared(gid), query_timeout: this.queryTimeout() });
      return null;
    } catch (err) {
      if (n.lostWith || isConnectionLoss(err)) throw err;
      return `ROLLBACK PREPARED failed: ${errText(err)}`;
    }
  }

  /**
   * The catalog-lock holders, those of `oids` ended by pg_terminate_backend(). That function looks the
   * holder's role up, so when the holder emptied the caches (by changing its own row) before locking
   * pg_authid it waits too; then they get SIGTERM from this host, once proven backends of this server.
   */
  private async endHolders(n: NodeState, oids: string[]): Promise<GuardUnblockRow[]> {
    const run = (dryRun: boolean) =>
      n.client!.query<GuardUnblockRow>({ ...guardUnblock({ dryRun }), values: [oids], query_timeout: this.queryTimeout() });
    try {
      return (await run(this.cfg.dryRun)).rows;
    } catch (err) {
      if (this.cfg.dryRun || !isLockTimeout(err)) throw err;
      const { rows } = await run(true);
      const endable = new Set(oids);
      const pids = rows.filter((h) => h.usesysid !== null && endable.has(h.usesysid)).map((h) => h.pid);
      const home = pids.length
        ? await n.client!.query<ServerHome>({ text: DATA_DIRECTORY_SQL, query_timeout: this.queryTimeout() }).then(
            (r) => r.rows[0] ?? null,
            () => null,
          )
        : null;
      const sent = new Set(home ? await signalBackends(pids, home) : []);
      return rows.map((h) => ({ ...h, terminated: sent.has(h.pid) }));
    }
  }

  /** A tick that failed while connected: say so (once, then every REPEAT_MS), and past --max-blind end the guard. */
  private blindTick(n: NodeState, err: unknown): void {
    const now = Date.now();
    const error = errText(err);
    const sqlstate = (err as { code?: string }).code;
    const maxMs = this.cfg.maxBlindMs ?? DEFAULT_MAX_BLIND_MS;
    const b = (n.blind ??= { sinceMs: now, error, sqlstate, saidMs: 0 });
    const forS = ((now - b.sinceMs) / 1000).toFixed(1);
    if (maxMs > 0 && now - b.sinceMs >= maxMs)
      throw new PgrevokeError(
        `${n.node.name}: blind for ${forS} s (--max-blind ${maxMs / 1000}): every tick fails: ${redact((err as Error).message ?? String(err))}`,
        {
          exitCode: ExitCode.PARTIAL,
          sqlstate,
          hint: "fix what makes the tick fail (often a privilege of the guard's role); a supervisor restarts the guard on exit 3",
          cause: err,
        },
      );
    if (b.error === error && now - b.saidMs < REPEAT_MS) return;
    const first = b.saidMs === 0 || b.error !== error;
    b.error = error;
    b.saidMs = now;
    const limit = maxMs > 0 ? `exits 3 after ${maxMs / 1000} s of this (--max-blind)` : 'never exits for it (--max-blind 0)';
    this.emit({
      type: 'error',
      node: n.node.name,
      message: first
        ? `tick failed (connection kept, retrying every ${this.cfg.intervalMs} ms; ${limit}): ${error}`
        : `tick still failing after ${forS} s (${limit}): ${error}`,
    });
  }

  /**
   * After a failed tick: the error that lost the connection (the caller reconnects), or null when
   * still connected, which keeps the connection, since a new login may be impossible (a full
   * server, a locked pg_authid). Throws past --max-blind.
   */
  private async afterFailedTick(n: NodeState, err: unknown): Promise<unknown> {
    if (n.lostWith || isConnectionLoss(err)) return n.lostWith ?? err;
    if (!isLockTimeout(err)) {
      this.blindTick(n, err);
      return null;
    }
    try {
      await this.unblock(n);
    } catch (e) {
      if (n.lostWith || isConnectionLoss(e)) return n.lostWith ?? e;
      // blocked too (a role the guard never cached), or failing: said, and retried at the next tick
      if (isLockTimeout(e))
        this.emit({ type: 'error', node: n.node.name, message: `tick blocked by a lock, and so is finding its holder: ${errText(e)}` });
      else this.blindTick(n, e);
    }
    return null;
  }

  private sawTick(n: NodeState): void {
    if (n.blind)
      this.emit({
        type: 'info',
        node: n.node.name,
        message: `tick works again after ${((Date.now() - n.blind.sinceMs) / 1000).toFixed(1)} s`,
      });
    else if (n.blocked) this.emit({ type: 'info', node: n.node.name, message: 'tick works again: no longer blocked by a lock' });
    n.blind = null;
    n.blocked = null;
  }

  private async loop(n: NodeState): Promise<void> {
    const min = this.cfg.backoff?.minMs ?? 100;
    const max = this.cfg.backoff?.maxMs ?? 5000;
    try {
      while (!this.stopped) {
        if (!n.client) {
          try {
            await this.open(n);
          } catch (err) {
            if (this.stopped) break;
            if (!n.connectedOnce && isFatalAtStart(err)) throw err;
            const delayMs = backoffDelay(n.failures, min, max);
            n.failures++;
            this.emit({ type: 'reconnecting', node: n.node.name, error: errText(err), lost: false, attempt: n.failures, delayMs });
            await this.sleep(delayMs);
          }
          continue;
        }
        const started = Date.now();
        try {
          await this.tick(n);
          this.sawTick(n);
        } catch (err) {
          if (this.stopped) break;
          const lost = await this.afterFailedTick(n, err);
          if (lost !== null) {
            await this.drop(n);
            n.blind = null;
            const delayMs = backoffDelay(n.failures, min, max);
            n.failures++;
            this.emit({ type: 'reconnecting', node: n.node.name, error: errText(lost), lost: true, attempt: n.failures, delayMs });
            await this.sleep(delayMs);
            continue;
          }
        }
        await this.sleep(Math.max(0, this.cfg.intervalMs - (Date.now() - started)));
      }
    } finally {
      await this.drop(n);
    }
  }

  /**
   * Guard every node until stop(). Transient failures (server down, restarting, connection lost)
   * never end it: each node reconnects with exponential backoff. A node that refuses the guard's
   * credentials or database before it was ever connected is a configuration error: every node is
   * stopped and run() rejects with it (exit 2).
   */
  run(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      const fatal: unknown[] = [];
      await Promise.all(
        this.cfg.nodes.map((node) =>
          this.loop(this.newNode(node)).catch((err: unknown) => {
            fatal.push(err);
            this.halt();
          }),
        ),
      );
      await this.auditChain;
      const first = fatal[0];
      if (first !== undefined) throw first instanceof PgrevokeError ? first : new PgrevokeError(errText(first), { cause: first });
    })();
    return this.running;
  }

  /** One pass over every node (connect, one statement, close); errors are per node. */
  async once(): Promise<PassResult[]> {
    const results = await Promise.all(
      this.cfg.nodes.map(async (node): Promise<PassResult> => {
        const n = this.newNode(node);
        try {
          await this.open(n);
          if (!n.client) return { node: node.name, found: 0, error: new PgrevokeError('stopped before connecting') };
          return { node: node.name, found: await this.tick(n), error: null };
        } catch (err) {
          const e = err instanceof PgrevokeError ? err : new PgrevokeError(errText(err), { cause: err, exitCode: ExitCode.USAGE });
          return { node: node.name, found: 0, error: e };
        } finally {
          await this.drop(n);
        }
      }),
    );
    await this.auditChain;
    return results;
  }

  private halt(): void {
    this.stopped = true;
    for (const w of [...this.stopWaiters]) w();
  }

  /** Stop every loop, close every connection, flush the audit log. */
  async stop(): Promise<void> {
    this.halt();
    if (this.running) await this.running.catch(() => undefined);
    await this.auditChain;
  }
}
