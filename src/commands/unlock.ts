// pgrevoke unlock ROLE [--address A] | unlock --address A: lift failed-login lockouts before their
// time (src/lockout/unlock.ts): the pg_hba.conf lines out and a checked reload, or LOGIN back. Thin:
// request -> match in the state -> connect -> plan (--dry-run) or unlock -> render -> exit code.
import os from 'node:os';
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { resolveTargets } from '../fleet/targets.js';
import { canonicalTarget } from '../lockout/address.js';
import { readLockouts, storePath } from '../lockout/store.js';
import type { Lockout, LockoutClient, LockoutNode } from '../lockout/types.js';
import { matchLockouts, planUnlock, unlock, type UnlockRequest, type UnlockResult, type UnlockStep } from '../lockout/unlock.js';
import { connect, type Client } from '../pg/connect.js';
import { shownName } from '../report/format.js';
import { checkOutputs } from '../record/safe-write.js';
import { osUserName } from './common.js';

interface UnlockFlags {
  address?: string;
  hbaFile?: string;
  dryRun?: boolean;
  reason?: string;
  auditLog?: string;
  target?: string[];
  fleet?: string;
  only?: string[];
}

function request(role: unknown, f: UnlockFlags): UnlockRequest {
  const address = f.address === undefined ? null : canonicalTarget(f.address);
  if (f.address !== undefined && address === null)
    throw usageError(
      `invalid --address: "${f.address}"`,
      'an IP address or a network, as `pgrevoke lockouts` lists it: 10.1.2.3, 2001:db8::7, 10.1.2.0/24, 0.0.0.0/0',
    );
  if (role === undefined && address === null)
    throw usageError('name the lockout: unlock ROLE, unlock ROLE --address A, or unlock --address A (a ban)');
  return { role: role === undefined ? null : String(role), address };
}

function describe(l: Lockout): string {
  const who =
    l.kind === 'address_ban'
      ? `every role from ${l.address} (ban)`
      : l.kind === 'role'
        ? `${shownName(l.role!)} (role lockout)`
        : `${shownName(l.role!)} from ${l.address}`;
  return `${who}: ${l.count} failures, since ${l.since}, until ${l.until}${l.ended ? `, ${l.ended.why === 'unlock' ? 'unlocked' : l.ended.why} at ${l.ended.at}` : ''}`;
}

function render(ctx: Context, matched: Lockout[], steps: UnlockStep[], result: UnlockResult | null, dryRun: boolean, code: ExitCode): void {
  if (ctx.json) {
    ctx.printJson({
      schemaVersion: 1,
      dryRun,
      file: storePath(),
      lockouts: matched,
      steps,
      pending: result?.pending ?? [],
      exitCode: code,
    });
    return;
  }
  ctx.out(`${dryRun ? 'Would unlock' : 'Unlock'} ${matched.length} lockout(s):`);
  for (const l of matched) ctx.out(`  ${l.id} ${describe(l)}`);
  for (const s of steps) ctx.out(`${(dryRun ? 'PLANNED' : s.status.toUpperCase()).padEnd(8)} ${s.node ?? '-'}: ${s.detail}`);
  for (const p of result?.pending ?? [])
    ctx.note(
      `pgrevoke: lockout ${p.id} is still in force on ${p.nodes.join(', ')} (not among the nodes given, or not reached): a running guard takes it out, or run unlock with that node`,
    );
}

export async function run([role, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as UnlockFlags;
  const req = request(role, f);
  await checkOutputs([{ flag: '--audit-log', file: f.auditLog, append: true }]);
  const matched = matchLockouts(await readLockouts(), req);
  if (!matched.length)
    throw usageError(
      `no lockout of ${req.role === null ? `every role from ${req.address}` : `${shownName(req.role)}${req.address ? ` from ${req.address}` : ''}`} in ${storePath()}; nothing was changed`,
      'pgrevoke lockouts lists them',
    );
  const { nodes: targets } = await resolveTargets(f, g, 'pgrevoke');
  const clients = await Promise.all(targets.map((t) => connect(t.params).catch((err: unknown) => err as Error)));
  try {
    const down = targets.filter((_, i) => clients[i] instanceof Error);
    for (const t of down) ctx.note(`pgrevoke: warning: node ${t.name} is unreachable: ${(clients[targets.indexOf(t)] as Error).message}`);
    if (down.length === targets.length) throw clients[0] as Error;
    const nodes: LockoutNode[] = targets.map((t, i) => ({
      name: t.name,
      params: t.params,
      client: () => (clients[i] instanceof Error ? null : (clients[i] as LockoutClient)),
      hbaFile: f.hbaFile,
    }));
    if (f.dryRun) {
      const steps = await planUnlock(matched, nodes, process.env);
      render(ctx, matched, steps, null, true, ExitCode.OK);
      return ExitCode.OK;
    }
    const result = await unlock(matched, {
      nodes,
      auditLog: f.auditLog ?? null,
      operator: { osUser: osUserName(), host: os.hostname() },
      note: f.reason ?? null,
    });
    const code = result.pending.length || result.steps.some((s) => s.status === 'failed') || down.length ? ExitCode.PARTIAL : ExitCode.OK;
    render(ctx, matched, result.steps, result, false, code);
    return code;
  } finally {
    await Promise.all(clients.map((c) => (c instanceof Error ? undefined : (c as Client).end().catch(() => undefined))));
  }
}
