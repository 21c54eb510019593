// `pgrevoke unlock`: lift lockouts before their time. The lockout is marked ended (why: unlock) in
// the state, so that no engine puts it back, then each node given takes its lines out (the
// engine's enforcement, limited to these lockouts and to ending them) or gives LOGIN back. A node
// not reached keeps its lines until a running guard, or another unlock, takes them out; the
// lockout stays in the state, ended, until then. The dry run reads the same state and files.
import { readFile } from 'node:fs/promises';
import { describeError } from '../errors.js';
import { covers } from './address.js';
import { cutoffSince, loginBack, readRoles } from './apply-role.js';
import { Enforcer, type EnforcerConfig } from './enforcer.js';
import { blockRules } from './hba-block.js';
import { nodeFacts } from './node-facts.js';
import { RELOAD_CONF } from './sql.js';
import { readLockouts, updateLockouts } from './store.js';
import type { Lockout, LockoutEvent, LockoutNode } from './types.js';

export interface UnlockRequest {
  /** The role: its pair lockouts (from `address` if given, else from every address) and its role lockout. */
  role: string | null;
  /** With a role, that pair; alone, the ban of that address. */
  address: string | null;
}

export interface UnlockStep {
  node: string | null;
  lockout: string | null;
  status: 'planned' | 'done' | 'kept' | 'failed';
  detail: string;
}

export interface UnlockResult {
  lockouts: Lockout[];
  steps: UnlockStep[];
  /** Lockouts still in force on some node after the run (node not given, not reached, or failed). */
  pending: { id: string; nodes: string[] }[];
}

/**
 * The lockouts the request names, ended or not (an ended one may still be in force on a node not
 * reached before). An address (or network) names the lockouts that refuse it: its own, and a
 * prefix or role-wide lockout (a ban of a prefix) that covers it, and those inside a network given.
 */
export function matchLockouts(list: readonly Lockout[], req: UnlockRequest): Lockout[] {
  const hit = (l: Lockout) =>
    req.address === null || (l.address !== null && (covers(l.address, req.address) || covers(req.address, l.address)));
  return list.filter((l) =>
    req.role === null
      ? l.kind === 'address_ban' && hit(l)
      : l.role === req.role && (req.address === null || (l.kind === 'address' && hit(l))),
  );
}

/** What unlocking would do on each node given, read from the files and the server; nothing changes. */
export async function planUnlock(
  matched: readonly Lockout[],
  nodes: readonly LockoutNode[],
  env: NodeJS.ProcessEnv,
): Promise<UnlockStep[]> {
  const steps: UnlockStep[] = [];
  const ids = new Set(matched.map((l) => l.id));
  for (const node of nodes) {
    const client = node.client();
    if (!client) continue;
    try {
      const facts = await nodeFacts(node, client);
      const file = facts.hbaFile;
      const inFile = file ? blockRules(await readFile(file, 'utf8'), file).filter((r) => ids.has(r.id)) : [];
      for (const r of inFile) steps.push({ node: node.name, lockout: r.id, status: 'planned', detail: `remove from ${file}: ${r.line}` });
      if (inFile.length)
        steps.push({ node: node.name, lockout: null, status: 'planned', detail: `${RELOAD_CONF}, then check pg_hba_file_rules` });
      const hbaHeld = matched.filter((l) => l.kind !== 'role' && l.applied.includes(node.name) && !inFile.some((r) => r.id === l.id));
      for (const l of hbaHeld)
        steps.push({
          node: node.name,
          lockout: l.id,
          status: 'planned',
          detail: file ? `no line of it in ${file} any more` : `cannot edit pg_hba.conf here: ${facts.hbaWhy}`,
        });
      const roles = matched.filter((l) => l.kind === 'role' && l.applied.length);
      if (facts.standby || !roles.length) continue;
      const rows = await readRoles(
        client,
        roles.map((l) => l.role!),
      );
      for (const l of roles) {
        const back = loginBack(l, rows.get(l.role!), await cutoffSince(l, env, file ? [await readFile(file, 'utf8')] : []));
        steps.push({
          node: node.name,
          lockout: l.id,
          status: 'planned',
          detail: 'sql' in back ? back.sql : `LOGIN not given back: ${back.kept}`,
        });
      }
    } catch (err) {
      steps.push({ node: node.name, lockout: null, status: 'failed', detail: describeError(err) });
    }
  }
  return steps;
}

function stepOf(e: LockoutEvent): UnlockStep | null {
  if (e.event === 'unlocked' || e.event === 'expired')
    return { node: e.node, lockout: e.lockout?.id ?? null, status: 'done', detail: e.detail };
  if (e.event === 'login_kept') return { node: e.node, lockout: e.lockout?.id ?? null, status: 'kept', detail: e.detail };
  if (e.event === 'failed') return { node: e.node, lockout: null, status: 'failed', detail: e.detail };
  return null;
}

/** Lift the lockouts: ended in the state first, then taken out on every node given that is connected. */
export async function unlock(matched: readonly Lockout[], cfg: EnforcerConfig, now: Date = new Date()): Promise<UnlockResult> {
  const env = cfg.env ?? process.env;
  const ids = new Set(matched.map((l) => l.id));
  await updateLockouts((cur) => {
    for (const l of cur) if (ids.has(l.id) && !l.ended) l.ended = { at: now.toISOString(), why: 'unlock' };
    return { list: cur, result: null };
  }, env);
  const events = await new Enforcer(cfg).enforce(now, ids);
  const after = (await readLockouts(env)).filter((l) => ids.has(l.id));
  return {
    lockouts: [...matched],
    steps: events.flatMap((e) => stepOf(e) ?? []),
    pending: after.filter((l) => l.applied.length).map((l) => ({ id: l.id, nodes: l.applied })),
  };
}
