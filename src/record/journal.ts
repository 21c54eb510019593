// The write-ahead record of a cutoff, one JSON-lines file per run in <state>/records: the plan and
// the before-state of every target on every node are on disk (fsync'd) before the first change;
// each step's outcome is appended as it completes; the full report closes it. A SIGKILL, a power
// loss or a full disk on the --report path leaves the record of what was done, and a rerun takes
// the before-state from it rather than from a half-changed role.
import { randomBytes } from 'node:crypto';
import { constants as C, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Plan, PlanRole } from '../playbook/model.js';
import { appendSafe, syncDir } from './safe-write.js';
import { openStateDir } from './state-dir.js';

export const RECORD_SCHEMA_VERSION = 1;

export interface RecordNode {
  node: string;
  /** The cluster's system identifier: a cluster initialised anew at the same host:port is another node. */
  systemIdentifier: string | null;
  standby: boolean;
  plan: Plan;
}

export interface BeginLine {
  type: 'begin';
  schemaVersion: typeof RECORD_SCHEMA_VERSION;
  startedAt: string;
  playbook: string;
  operator: { osUser: string; host: string };
  reasonText: string | null;
  nodes: RecordNode[];
}

export interface StepOutcome {
  index: number;
  action: string;
  status: string;
  detail: string | null;
  database: string | null;
  role: string | null;
  file?: string;
  executed: string[];
  durationMs: number | null;
}

export type RecordLine =
  | BeginLine
  | { type: 'step'; at: string; node: string; step: StepOutcome }
  | { type: 'end'; at: string; exitCode: number; report: unknown }
  | { type: 'restored'; at: string; node: string; role: string };

/** A record read back: its begin line, the steps per node, the end (if the run got there), the restores. */
export interface CutoffRecordFile {
  file: string;
  begin: BeginLine;
  steps: { node: string; step: StepOutcome }[];
  end: { exitCode: number; report: unknown } | null;
  restored: { node: string; role: string; at: string }[];
}

async function recordsDir(env: NodeJS.ProcessEnv): Promise<string> {
  return openStateDir(env, 'records');
}

/** The open record of a run: appends go in order, each made durable before the next. */
export class CutoffRecord {
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown = null;

  private constructor(
    readonly file: string,
    private readonly handle: fs.FileHandle,
  ) {}

  /** Create the record with its begin line, durable (file and directory) before this returns. */
  static async begin(begin: Omit<BeginLine, 'type' | 'schemaVersion'>, env: NodeJS.ProcessEnv = process.env): Promise<CutoffRecord> {
    const dir = await recordsDir(env);
    const file = path.join(dir, `${begin.startedAt.replace(/[:.]/g, '')}-${randomBytes(6).toString('hex')}.jsonl`);
    const handle = await fs.open(file, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW | C.O_APPEND, 0o600);
    const record = new CutoffRecord(file, handle);
    try {
      await record.write({ type: 'begin', schemaVersion: RECORD_SCHEMA_VERSION, ...begin });
      await syncDir(dir);
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    return record;
  }

  /** Called once, on the first append that fails: the run must not go on changing things unrecorded. */
  onFailure: ((err: unknown) => void) | null = null;

  private async write(line: RecordLine): Promise<void> {
    // appendFile writes it all or throws (a bare write() may stop short on a full disk and say nothing)
    await this.handle.appendFile(`${JSON.stringify(line)}\n`);
    await this.handle.datasync();
  }

  /** Queue a step's outcome (progress callbacks cannot wait); the next append waits for it. */
  step(node: string, step: StepOutcome): void {
    this.chain = this.chain
      .then(() => this.write({ type: 'step', at: new Date().toISOString(), node, step }))
      .catch((err: unknown) => {
        if (this.failure) return;
        this.failure = err;
        this.onFailure?.(err);
      });
  }

  /** Close the record with the full report; throws the first failed append, if any. */
  async end(exitCode: number, report: unknown): Promise<void> {
    try {
      await this.chain;
      await this.write({ type: 'end', at: new Date().toISOString(), exitCode, report });
    } finally {
      await this.handle.close().catch(() => undefined);
    }
    if (this.failure) throw this.failure;
  }
}

/** Mark a record as restored for one role on one node, so no later restore or rerun takes it again. */
export async function markRestored(file: string, node: string, role: string): Promise<void> {
  const line: RecordLine = { type: 'restored', at: new Date().toISOString(), node, role };
  // after a torn last line (a full disk), start on a line of its own
  const text = await fs.readFile(file, 'utf8');
  await appendSafe(file, `${text.length && !text.endsWith('\n') ? '\n' : ''}${JSON.stringify(line)}\n`);
}

/** Parse one record; lines torn by a crash or a full disk are skipped; a file without its begin line is not a record. */
export function parseRecord(file: string, text: string): CutoffRecordFile | null {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const parsed: RecordLine[] = [];
  // a line torn by a crash or a full disk is skipped, wherever later appends left it
  for (const l of lines) {
    try {
      parsed.push(JSON.parse(l) as RecordLine);
    } catch {
      continue;
    }
  }
  const begin = parsed[0];
  if (begin?.type !== 'begin' || begin.schemaVersion !== RECORD_SCHEMA_VERSION || !Array.isArray(begin.nodes)) return null;
  // records are sorted and dated by it
  if (typeof begin.startedAt !== 'string') return null;
  const out: CutoffRecordFile = { file, begin, steps: [], end: null, restored: [] };
  for (const l of parsed.slice(1)) {
    if (l.type === 'step') out.steps.push({ node: l.node, step: l.step });
    else if (l.type === 'end') out.end = { exitCode: l.exitCode, report: l.report };
    else if (l.type === 'restored') out.restored.push({ node: l.node, role: l.role, at: l.at });
  }
  return out;
}

/** Every record in the state directory, oldest first; files that are not records are skipped. */
export async function readRecords(env: NodeJS.ProcessEnv = process.env): Promise<CutoffRecordFile[]> {
  const dir = await recordsDir(env);
  const out: CutoffRecordFile[] = [];
  for (const name of (await fs.readdir(dir)).filter((n) => n.endsWith('.jsonl')).sort()) {
    const file = path.join(dir, name);
    const st = await fs.lstat(file);
    if (!st.isFile()) continue;
    const rec = parseRecord(file, await fs.readFile(file, 'utf8'));
    if (rec) out.push(rec);
  }
  return out.sort((a, b) => a.begin.startedAt.localeCompare(b.begin.startedAt));
}

/** How far a record's start may lie ahead of this host's clock (a clock stepped back a little since). */
export const FUTURE_SKEW_MS = 5 * 60_000;

/**
 * A record that says it started later than now was not written by a cutoff on this clock: it was
 * planted (dated ahead, it would be taken as the latest). An unreadable date counts as one.
 */
export function datedInFuture(record: CutoffRecordFile, now: number = Date.now()): boolean {
  const t = Date.parse(record.begin.startedAt);
  return !Number.isFinite(t) || t > now + FUTURE_SKEW_MS;
}

/** The latest record of `role` (by name, or by OID when given) on `node` that no restore has used yet; never one dated in the future. */
export function latestUnrestored(
  records: readonly CutoffRecordFile[],
  match: { role: string; node?: string; oid?: number; systemIdentifier?: string | null },
  now: number = Date.now(),
): { record: CutoffRecordFile; node: RecordNode; role: PlanRole } | null {
  for (const record of [...records].reverse())
    for (const node of datedInFuture(record, now) ? [] : record.begin.nodes) {
      if (match.node !== undefined && node.node !== match.node) continue;
      if (match.systemIdentifier !== undefined && (node.systemIdentifier ?? null) !== match.systemIdentifier) continue;
      const role = node.plan.roles.find((r) => (match.oid !== undefined ? r.oid === match.oid : r.name === match.role));
      if (!role) continue;
      if (record.restored.some((x) => x.node === node.node && x.role === role.name)) continue;
      return { record, node, role };
    }
  return null;
}

/**
 * The records a rerun's before-state came from, following `beforeFrom` back from `file` (bounded, no
 * loops): each with the plan that named `role`. Only records in the state directory are followed.
 */
export function beforeChain(
  records: readonly CutoffRecordFile[],
  file: string | null | undefined,
  role: string,
): { record: CutoffRecordFile; plan: Plan; entry: PlanRole }[] {
  const out: { record: CutoffRecordFile; plan: Plan; entry: PlanRole }[] = [];
  for (let next = file ?? null; next !== null && out.length < 20 && !out.some((x) => x.record.file === next);) {
    const record = records.find((r) => r.file === next && !datedInFuture(r));
    const hit = record?.begin.nodes
      .flatMap((n) => n.plan.roles.map((entry) => ({ plan: n.plan, entry })))
      .find((x) => x.entry.name === role);
    if (!record || !hit) break;
    out.push({ record, ...hit });
    next = hit.entry.beforeFrom ?? null;
  }
  return out;
}
