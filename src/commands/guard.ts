// pgrevoke guard: the thin CLI layer over src/guard. Flags -> config, events -> stdout (kills) and
// stderr (status), signals (SIGTERM/SIGINT stop with exit 0, SIGHUP reloads the deny file), and
// the exit status of --once (0 nothing found, 1 acted or would have, 2 could not tell, 3 some nodes failed).
import os from 'node:os';
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { Guard, type GuardConfig, type GuardEvent, type GuardNode } from '../guard/index.js';
import { describeGroups } from '../guard/lockout-groups.js';
import { parseInterval, parseMaxBlind, parseRoleNames, timeoutRules } from '../guard/options.js';
import { guardJson, guardLine, guardStatus, lockoutJson, nothingFoundJson, onceSummaryLine, type OnceSummary } from '../report/guard.js';
import { resolveTargets } from '../fleet/targets.js';
import { osUserName } from './common.js';

interface GuardFlags {
  target?: string[];
  fleet?: string;
  only?: string[];
  deny?: string[];
  denyFile?: string;
  excludeRole?: string[];
  idleTimeout?: string[];
  idleTimeoutRole?: string[];
  idleInTransactionTimeout?: string[];
  idleInTransactionTimeoutRole?: string[];
  interval?: string;
  dryRun?: boolean;
  once?: boolean;
  auditLog?: string;
  maxBlind?: string;
  onMembershipRevoked?: boolean;
  lockoutAfter?: string;
  lockoutWindow?: string;
  lockoutFor?: string;
  lockoutBy?: string;
  banAddressAfter?: string;
  excludeAddress?: string[];
  serverLog?: string;
  hbaFile?: string;
}

/** The guard's backend is easy to tell apart in pg_stat_activity unless the operator named it. */
export async function guardNodes(f: GuardFlags, g: GlobalOptions): Promise<GuardNode[]> {
  return (await resolveTargets({ target: f.target, fleet: f.fleet, only: f.only }, g, 'pgrevoke-guard')).nodes.map(
    ({ name, params, cluster }) => ({ name, params, cluster }),
  );
}

const LOCKOUT_FLAGS = ['lockoutAfter', 'banAddressAfter', 'lockoutWindow', 'lockoutFor', 'lockoutBy', 'excludeAddress'] as const;

/** The lockout flags as guard's lockout config; null without --lockout-after / --ban-address-after. */
async function guardLockout(f: GuardFlags, nodes: readonly GuardNode[]): Promise<GuardConfig['lockout']> {
  // src/lockout loads only when a lockout flag is given: a guard without one never loads it
  const given = LOCKOUT_FLAGS.some((k) => f[k] !== undefined);
  const policy = given
    ? (await import('../lockout/options.js')).lockoutPolicy({ ...f, excludeRole: parseRoleNames(f.excludeRole, '--exclude-role') })
    : null;
  if (!policy) {
    if (f.serverLog || f.hbaFile)
      throw usageError(`${f.serverLog ? '--server-log' : '--hba-file'} needs --lockout-after N or --ban-address-after N`);
    return null;
  }
  // a lockout counts failures over passes, and is enforced beside the loop: one pass has neither
  if (f.once) throw usageError('--lockout-after and --ban-address-after cannot be used with --once', 'run the guard without --once');
  if (nodes.length > 1 && (f.serverLog || f.hbaFile))
    throw usageError(`${f.serverLog ? '--server-log' : '--hba-file'} names one file: it does not combine with several nodes`);
  return { policy, serverLog: f.serverLog ?? null, hbaFile: f.hbaFile ?? null };
}

export async function guardConfig(f: GuardFlags, g: GlobalOptions): Promise<GuardConfig> {
  const nodes = await guardNodes(f, g);
  return {
    nodes,
    lockout: await guardLockout(f, nodes),
    deny: parseRoleNames(f.deny, '--deny'),
    denyFile: f.denyFile ?? null,
    exclude: parseRoleNames(f.excludeRole, '--exclude-role'),
    idle: timeoutRules(f.idleTimeout, f.idleTimeoutRole, '--idle-timeout'),
    idleInTransaction: timeoutRules(f.idleInTransactionTimeout, f.idleInTransactionTimeoutRole, '--idle-in-transaction-timeout'),
    intervalMs: parseInterval(f.interval),
    dryRun: Boolean(f.dryRun),
    auditLog: f.auditLog ?? null,
    maxBlindMs: parseMaxBlind(f.maxBlind),
    onMembershipRevoked: Boolean(f.onMembershipRevoked),
    operator: { osUser: osUserName(), host: os.hostname() },
  };
}

function lockoutSummary(l: NonNullable<GuardConfig['lockout']>, nodes: readonly GuardNode[]): string {
  const p = l.policy;
  const by = p.after ? `locking ${p.by === 'role' ? 'the role' : 'the (role, address)'} after ${p.after} failed logins` : '';
  const ban = p.banAddressAfter ? `banning an address after ${p.banAddressAfter}` : '';
  return `${[by, ban].filter(Boolean).join(' and ')} within ${p.windowMs / 1000} s for ${p.forMs / 1000} s (${describeGroups(nodes)}; log: ${l.serverLog ?? 'over SQL'})`;
}

function summary(cfg: GuardConfig): string {
  const t = (r: GuardConfig['idle']) => r.databases.size + r.roles.size;
  const bits = [
    `${cfg.nodes.length} node(s) (${cfg.nodes.map((n) => n.name).join(', ')})`,
    `every ${cfg.intervalMs} ms`,
    `deny ${cfg.deny.length}${cfg.denyFile ? ` + file ${cfg.denyFile}` : ''}`,
    `exclude ${cfg.exclude.length}`,
    `idle timeouts ${t(cfg.idle)}`,
    `idle-in-transaction timeouts ${t(cfg.idleInTransaction)}`,
    ...(cfg.onMembershipRevoked ? ['ending sessions of members that lose a membership'] : []),
    ...(cfg.lockout ? [lockoutSummary(cfg.lockout, cfg.nodes)] : []),
    cfg.maxBlindMs ? `exit 3 after ${cfg.maxBlindMs / 1000} s blind` : 'never exits blind',
  ];
  return `pgrevoke guard: ${cfg.dryRun ? 'DRY RUN (nothing is terminated): ' : ''}watching ${bits.join(', ')}`;
}

/** The action events printed so far, by kind (for --once's closing line). */
type Acted = Pick<OnceSummary, 'ended' | 'wouldEnd' | 'denied'>;

/**
 * --once: one pass, each failed node named, then one closing line on stderr; with --json, a pass
 * that printed no action event prints one nothing_found object with the same counts.
 */
async function runOnce(ctx: Context, guard: Guard, cfg: GuardConfig, acted: Acted): Promise<ExitCode> {
  const results = await guard.once();
  const failed = results.filter((r) => r.error);
  for (const r of failed)
    ctx.note(`pgrevoke guard: error: ${r.node}: ${r.error!.message}${r.error!.sqlstate ? ` [SQLSTATE ${r.error!.sqlstate}]` : ''}`);
  if (failed.length === results.length) throw failed[0]!.error!;
  const summary: OnceSummary = {
    nodesChecked: results.length - failed.length,
    nodesFailed: failed.length,
    sessionsSeen: results.reduce((n, r) => n + r.sessions, 0),
    ...acted,
  };
  if (ctx.json && acted.ended + acted.wouldEnd + acted.denied === 0)
    ctx.stdout.write(JSON.stringify(nothingFoundJson(summary, new Date().toISOString(), cfg.dryRun)) + '\n');
  ctx.note(onceSummaryLine(summary));
  if (failed.length) return ExitCode.PARTIAL;
  return results.some((r) => r.found > 0) ? ExitCode.EXPOSED : ExitCode.OK;
}

export async function run([flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as GuardFlags;
  // a lost membership is a difference between two passes: one pass cannot see one
  if (f.once && f.onMembershipRevoked)
    throw usageError('--on-membership-revoked cannot be used with --once', 'it compares two passes: run the guard without --once');
  const cfg = await guardConfig(f, g);

  const acted: Acted = { ended: 0, wouldEnd: 0, denied: 0 };
  const onEvent = (e: GuardEvent) => {
    if (e.type === 'kill' || e.type === 'denied' || e.type === 'rollback') {
      if (e.type === 'denied') acted.denied++;
      else if (e.type === 'kill') acted[e.kill.dryRun ? 'wouldEnd' : 'ended']++;
      if (ctx.json) ctx.stdout.write(JSON.stringify(guardJson(e)) + '\n');
      else ctx.out(guardLine(e, ctx.c));
      return;
    }
    // a lockout event is a JSON object like the kills' with --json (guard's stdout is one stream of events)
    if (e.type === 'lockout' && ctx.json) {
      ctx.stdout.write(JSON.stringify(lockoutJson(e.lockout)) + '\n');
      return;
    }
    const line = guardStatus(e);
    if (line) ctx.note(line);
  };
  const guard = new Guard(cfg, onEvent);
  await guard.init();

  if (f.once) return runOnce(ctx, guard, cfg, acted);

  ctx.note(summary(cfg));
  let signals = 0;
  const onStop = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      ctx.note(`pgrevoke guard: ${sig} again: exiting at once`);
      process.exit(ExitCode.PARTIAL);
    }
    ctx.note(`pgrevoke guard: ${sig}: stopping`);
    void guard.stop();
  };
  const onHup = () => void guard.reload('signal');
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onHup);
  try {
    await guard.run();
  } finally {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onHup);
  }
  ctx.note('pgrevoke guard: stopped');
  return ExitCode.OK;
}
