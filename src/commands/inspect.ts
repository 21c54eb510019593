// pgrevoke inspect <role>: read-only; exit 0 whenever the inspection ran, whatever the verdict.
import type { GlobalOptions } from '../cli.js';
import { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { inspectRole } from '../inspect/index.js';
import { renderInspect } from '../report/inspect-text.js';
import { openSession } from './common.js';

interface InspectFlags {
  allDatabases?: boolean;
  concurrency?: string;
}

export async function run([role, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const opts = flags as InspectFlags;
  const concurrency = Number(opts.concurrency ?? 4);
  const { params, client, close } = await openSession(g);
  try {
    const progress = await ctx.progress(`inspecting ${JSON.stringify(role)}`);
    const report = await inspectRole(params, client, String(role), {
      allDatabases: opts.allDatabases,
      concurrency: Number.isInteger(concurrency) && concurrency > 0 ? concurrency : 4,
    }).finally(() => progress.stop());
    if (ctx.json) ctx.printJson(report);
    else ctx.out(renderInspect(report, ctx.c));
    return ExitCode.OK;
  } finally {
    await close();
  }
}
