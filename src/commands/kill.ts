// pgrevoke kill <pid...>: terminate (or --cancel) exactly the named sessions. Thin: pids -> lookup ->
// refuse / confirm -> signal -> audit -> report. With several --target nodes every pid is NODE:PID
// (pids are per server); each node gets its own connection, and one unreachable node fails only its pids.
import os from 'node:os';
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode, PgrevokeError, usageError } from '../errors.js';
import { connect, type Client } from '../pg/connect.js';
import { collectServer } from '../pg/server.js';
import { checkOutputs } from '../record/safe-write.js';
import { appendAudit } from '../record/audit.js';
import { renderKillResults, renderKillTargets } from '../report/sessions.js';
import {
  killAuditEntries,
  killDoc,
  killExitCode,
  lookupTargets,
  parseNodePids,
  refuseNonClient,
  signalTargets,
  unreachableResults,
  type KillAction,
  type KillAuditEntry,
  type KillResult,
  type KillTarget,
  type NodePid,
} from '../sessions/kill.js';
import { resolveTargets } from '../fleet/targets.js';
import { numberFlag } from '../util/flags.js';
import { osUserName, type TargetNode } from './common.js';
import { ident } from '../pg/quote.js';

interface KillFlags {
  target?: string[];
  fleet?: string;
  only?: string[];
  cancel?: boolean;
  waitMs?: string;
  force?: boolean;
  yes?: boolean;
  reason?: string;
  auditLog?: string;
}

/** --wait-ms: 0 (do not wait) to an hour. */
function parseWaitMs(text: string | undefined): number {
  return numberFlag(text, '--wait-ms', { integer: true, min: 0, max: 3_600_000, unit: 'ms' }) ?? 5000;
}

/**
 * The nodes to act on: guard's --target parsing, validation and host:port labels (nodeLabel), as is.
 * Only the application_name differs: guard names its backends pgrevoke-guard by default, kill's stay pgrevoke.
 */
export async function killNodes(f: Pick<KillFlags, 'target' | 'fleet' | 'only'>, g: GlobalOptions): Promise<TargetNode[]> {
  const { nodes } = await resolveTargets({ target: f.target, fleet: f.fleet, only: f.only }, g, 'pgrevoke');
  return nodes.map(({ name, params }) => ({ name, params }));
}

/** One node's connection and what it said about its pids, or why it could not be asked. */
interface NodeState {
  node: TargetNode;
  pids: number[];
  client: Client | null;
  major: number;
  dbUser: string;
  targets: KillTarget[];
  error: PgrevokeError | null;
}

async function openNode(node: TargetNode, pids: number[], qualify: boolean): Promise<NodeState> {
  const st: NodeState = { node, pids, client: null, major: 0, dbUser: '', targets: [], error: null };
  try {
    st.client = await connect(node.params);
    const server = await collectServer(st.client);
    st.major = server.major;
    st.dbUser = (await st.client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
    st.targets = await lookupTargets(st.client, pids, server.major, { node: node.name, qualify });
  } catch (err) {
    st.error = err instanceof PgrevokeError ? err : new PgrevokeError((err as Error)?.message ?? String(err), { cause: err });
    await st.client?.end().catch(() => undefined);
    st.client = null;
  }
  return st;
}

/** Only the nodes some pid names, connected to all at once. */
function openNodes(nodes: TargetNode[], refs: NodePid[], qualify: boolean): Promise<NodeState[]> {
  const involved = nodes.filter((n) => refs.some((r) => r.node === n.name));
  return Promise.all(
    involved.map((n) =>
      openNode(
        n,
        refs.filter((r) => r.node === n.name).map((r) => r.pid),
        qualify,
      ),
    ),
  );
}

/** Show the sessions (and the nodes that cannot be reached), then ask; Ctrl+C at the prompt is a no. */
async function confirmSignal(ctx: Context, found: KillTarget[], down: NodeState[], action: KillAction): Promise<boolean> {
  for (const s of down)
    ctx.note(`pgrevoke: warning: node ${s.node.name} is unreachable, its pids will not be signalled: ${s.error!.message}`);
  ctx.note(renderKillTargets(found, ctx.c));
  const { confirm } = await import('@inquirer/prompts');
  try {
    const what = action === 'cancel' ? 'Cancel the running query of' : 'Terminate';
    return await confirm(
      { message: `${what} ${found.length === 1 ? 'this session' : `these ${found.length} sessions`}?`, default: false },
      { output: process.stderr },
    );
  } catch {
    return false; // Ctrl+C at the prompt
  }
}

/** Every named pid's result, in the order the pids were named: signalled where its node is up, a failure where not. */
async function signalAll(
  up: NodeState[],
  down: NodeState[],
  refs: NodePid[],
  opts: { action: KillAction; waitMs: number; qualify: boolean },
): Promise<KillResult[]> {
  const { action, waitMs, qualify } = opts;
  const perNode = await Promise.all([
    ...up.map((s) => signalTargets(s.client!, s.targets, { action, waitMs, major: s.major })),
    ...down.map((s) => unreachableResults(s.pids, { node: s.node.name, qualify }, action, s.error!.message)),
  ]);
  const key = (r: NodePid) => `${r.node}\n${r.pid}`;
  const byKey = new Map(perNode.flat().map((r) => [key(r), r]));
  return refs.map((r) => byKey.get(key(r))!);
}

/** Append the audit lines; a failed write makes a clean exit PARTIAL (what was signalled is not recorded). */
async function writeAudit(ctx: Context, file: string, entries: KillAuditEntry[], code: ExitCode): Promise<ExitCode> {
  try {
    const notice = await appendAudit(file, entries);
    if (notice) ctx.note(`pgrevoke: ${notice}`);
  } catch (err) {
    ctx.note(`pgrevoke: error: could not write --audit-log ${file}: ${(err as Error).message}`);
    if (code === ExitCode.OK || code === ExitCode.EXPOSED) return ExitCode.PARTIAL;
  }
  return code;
}

/** What was done on stdout (or the JSON document); failures and hints on stderr. */
function reportResults(ctx: Context, results: KillResult[], down: NodeState[], dbUsers: Map<string, string>, qualify: boolean): void {
  const { done, failed } = renderKillResults(results, ctx.c);
  if (ctx.json) ctx.printJson(killDoc(results));
  else if (done.length) ctx.out(done.join('\n'));
  for (const line of failed) ctx.note(`pgrevoke: error: ${line}`);
  for (const s of down) if (s.error!.hint) ctx.note(`hint: ${qualify ? `node ${s.node.name}: ` : ''}${s.error!.hint}`);
  const deniedOn = [...new Set(results.filter((r) => r.status === 'denied').map((r) => dbUsers.get(r.node) ?? ''))];
  for (const dbUser of deniedOn)
    ctx.note(
      `hint: connect as a superuser, or GRANT pg_signal_backend TO ${ident(dbUser)} (which still cannot signal superusers' backends)`,
    );
}

export async function run([pidArgs, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as KillFlags;
  const nodes = await killNodes(f, g);
  const refs = parseNodePids(
    (pidArgs as unknown[]).map(String),
    nodes.map((n) => n.name),
  );
  const qualify = nodes.length > 1;
  const action: KillAction = f.cancel ? 'cancel' : 'terminate';
  const waitMs = parseWaitMs(f.waitMs);
  if (!f.yes && !ctx.interactive)
    throw usageError(
      `refusing to ${action} without confirmation: there is no terminal to ask on, and nothing was signalled`,
      'pass --yes to act without asking',
    );
  // fail before anything is signalled, not after
  await checkOutputs([{ flag: '--audit-log', file: f.auditLog, append: true }]);
  if (!f.auditLog && f.reason) ctx.note('pgrevoke: note: --reason is recorded only in the audit log (--audit-log FILE)');

  const states = await openNodes(nodes, refs, qualify);
  try {
    // one node (no --target, or one): its connection error is the command's error, as before
    if (!qualify && states[0]?.error) throw states[0].error;
    const up = states.filter((s) => s.client);
    const down = states.filter((s) => !s.client);
    const targets = up.flatMap((s) => s.targets);
    const refusal = refuseNonClient(targets, Boolean(f.force));
    if (refusal) throw refusal;

    const found = targets.filter((t) => t.found);
    if (found.length && !f.yes && !(await confirmSignal(ctx, found, down, action))) {
      ctx.note('pgrevoke: not confirmed; nothing was signalled');
      return ExitCode.USAGE;
    }

    const results = await signalAll(up, down, refs, { action, waitMs, qualify });
    const dbUsers = new Map(up.map((s) => [s.node.name, s.dbUser]));
    let code = killExitCode(results);
    if (f.auditLog) {
      const entries = killAuditEntries(results, targets, {
        operator: (node) => ({ dbUser: dbUsers.get(node) ?? '', osUser: osUserName(), host: os.hostname() }),
        note: f.reason ?? null,
      });
      code = await writeAudit(ctx, f.auditLog, entries, code);
    }
    reportResults(ctx, results, down, dbUsers, qualify);
    return code;
  } finally {
    await Promise.all(states.map((s) => s.client?.end().catch(() => undefined)));
  }
}
