// pgrevoke sessions: every session on the server (read-only), filtered in SQL; --watch is a live view
// (src/sessions/watch) whose K and C signal the selected session as `pgrevoke kill` does.
import os from 'node:os';
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { describeConn } from '../pg/conninfo.js';
import { collectServer } from '../pg/server.js';
import { renderSessions } from '../report/sessions.js';
import { filtersFromOptions, parseWatch, type SessionsOptions, type SortKey } from '../sessions/filters.js';
import { listSessions, seesAllActivity } from '../sessions/list.js';
import { resolveTargets } from '../fleet/targets.js';
import { nodesExitCode, runOnNodes } from '../pg/nodes.js';
import { nodeHeading } from '../report/format.js';
import { connect } from '../pg/connect.js';
import { checkOutputs } from '../record/safe-write.js';
import { watchSortFor } from '../sessions/watch/state.js';
import type { SignalSettings, WatchSource } from '../sessions/watch/sources.js';
import { osUserName } from './common.js';

interface SessionsFlags extends SessionsOptions {
  watch?: boolean | string;
  target?: string[];
  fleet?: string;
  only?: string[];
  auditLog?: string;
}

export async function run([flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as SessionsFlags;
  const filters = filtersFromOptions(f);
  const watch = parseWatch(f.watch);
  if (watch !== null && ctx.json)
    throw usageError(
      '--watch redraws a table on a terminal and does not combine with --json',
      'run --json without --watch, in a loop if need be',
    );
  if (watch !== null && !ctx.stdout.isTTY)
    throw usageError(
      '--watch needs a terminal: stdout is not one',
      'run without --watch to print the sessions once, or with --json for scripts',
    );
  if (watch === null && f.auditLog)
    throw usageError(
      '--audit-log records what the live view (--watch) signals: without --watch nothing is',
      'pgrevoke kill --audit-log FILE',
    );
  // fail before the view opens, not at the first K
  if (watch !== null) await checkOutputs([{ flag: '--audit-log', file: f.auditLog, append: true }]);
  const audit: SignalSettings = { auditLog: f.auditLog, who: { osUser: osUserName(), host: os.hostname() } };
  const view = { interval: watch ?? 0, sort: filters.sort };

  const { nodes: targets } = await resolveTargets(f, g, 'pgrevoke');
  if (targets.length > 1 || f.fleet) {
    // one section per node; kill takes NODE:PID with the same names
    const collect = () =>
      runOnNodes(targets, 16, async (_t, client) => listSessions(client, filters, { major: (await collectServer(client)).major }));
    const text = (nodes: Awaited<ReturnType<typeof collect>>) =>
      nodes
        .map((n) => `${nodeHeading(n, ctx.c)}\n${n.value ? renderSessions(n.value, ctx.c) : ctx.c.red(`${n.status}: ${n.error ?? ''}`)}`)
        .join('\n\n');
    if (watch !== null) {
      const { fleetSource } = await import('../sessions/watch/sources.js');
      return watchLoop(ctx, { ...view, title: `${targets.length} nodes`, multiNode: true }, fleetSource(targets, collect, audit));
    }
    const nodes = await collect();
    if (ctx.json) ctx.printJson({ schemaVersion: 1, kind: 'fleet', nodes });
    else ctx.out(text(nodes));
    return nodesExitCode(nodes) ?? ExitCode.OK;
  }
  const { params } = targets[0]!;
  const client = await connect(params);
  try {
    const server = await collectServer(client);
    const limited = !(await seesAllActivity(client));
    if (watch !== null) {
      const { nodeSource } = await import('../sessions/watch/sources.js');
      const n = server.versionNum;
      const title = `PostgreSQL ${Math.floor(n / 10000)}.${n % 100}${limited ? ' (without pg_read_all_stats)' : ''}, ${describeConn(params)}`;
      const list = (c: typeof client) => listSessions(c, filters, { major: server.major });
      const source = nodeSource(client, { params, node: targets[0]!.name, major: server.major, list }, audit);
      // awaited here: the connection closes (finally) only when the view has ended
      return await watchLoop(ctx, { ...view, title, multiNode: false }, source);
    }
    const doc = await listSessions(client, filters, { major: server.major });
    if (ctx.json) {
      ctx.printJson(doc);
      if (limited) ctx.note("pgrevoke: note: without superuser or pg_read_all_stats, other roles' sessions show no state, client or query");
    } else ctx.out(renderSessions(doc, ctx.c, { limited }));
    return ExitCode.OK;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The live view (src/sessions/watch) until q, Ctrl+C, SIGINT or SIGTERM: exit 0, or 3 when a session
 * was signalled and its audit line could not be written (as `kill`).
 */
async function watchLoop(
  ctx: Context,
  o: { interval: number; title: string; multiNode: boolean; sort: SortKey },
  source: WatchSource,
): Promise<ExitCode> {
  const { runWatch } = await import('../sessions/watch/loop.js');
  try {
    const { auditFailed } = await runWatch({
      ...o,
      sort: watchSortFor(o.sort),
      c: ctx.c,
      streams: { stdin: process.stdin, stdout: process.stdout },
      fetch: source.fetch,
      signal: source.signal,
    });
    return auditFailed ? ExitCode.PARTIAL : ExitCode.OK;
  } finally {
    await source.close();
  }
}
