// pgrevoke sessions: every session on the server (read-only), filtered in SQL; --watch redraws it.
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { describeConn } from '../pg/conninfo.js';
import { collectServer } from '../pg/server.js';
import { renderSessions } from '../report/sessions.js';
import { filtersFromOptions, parseWatch, type SessionsOptions } from '../sessions/filters.js';
import { listSessions, seesAllActivity } from '../sessions/list.js';
import { resolveTargets } from '../fleet/targets.js';
import { nodesExitCode, runOnNodes } from '../pg/nodes.js';
import { nodeHeading } from '../report/format.js';
import { connect } from '../pg/connect.js';

interface SessionsFlags extends SessionsOptions {
  watch?: boolean | string;
  target?: string[];
  fleet?: string;
  only?: string[];
}

const CLEAR = '\x1b[H\x1b[2J';

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
      // each frame connects anew: a node that goes down or comes back shows as such
      await watchLoop(ctx, watch, `${targets.length} nodes`, async () => text(await collect()));
      return ExitCode.OK;
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
      await watchLoop(ctx, watch, describeConn(params), async () =>
        renderSessions(await listSessions(client, filters, { major: server.major }), ctx.c, { limited }),
      );
      return ExitCode.OK;
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

/** Redraw `frame()` every `seconds` until Ctrl+C, which ends the watch normally (exit 0). */
async function watchLoop(ctx: Context, seconds: number, where: string, frame: () => Promise<string>): Promise<void> {
  let stopped = false;
  let wake: (() => void) | null = null;
  const onSignal = () => {
    stopped = true;
    wake?.();
  };
  process.on('SIGINT', onSignal);
  try {
    while (!stopped) {
      const body = await frame();
      if (stopped) break;
      const head = ctx.c.dim(
        `every ${seconds}s: pgrevoke sessions on ${where}   ${new Date().toISOString().slice(11, 19)} UTC   (Ctrl+C to stop)`,
      );
      ctx.out(`${CLEAR}${head}\n${body}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, seconds * 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    process.off('SIGINT', onSignal);
  }
}
