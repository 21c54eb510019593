// Where the cutoff bench runs things. split: the server (its postmaster and every child) and the
// bench's own process (the attacker) on CPU 0, the responder's command on CPU 1. shared: no pinning.
// Backends forked after a change inherit the postmaster's CPUs; the ones alive are moved with it.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EmbeddedCluster } from '../src/embedded/cluster.js';

export type Placement = 'split' | 'shared';

const TASKSET = ['/usr/bin/taskset', '/bin/taskset'].find((p) => existsSync(p));
/** The CPUs this process may use, read before it pins itself (nproc's count). */
const CPUS = os.availableParallelism();

/** Why split cannot be measured here, or null. */
export function splitUnavailable(): string | null {
  if (!TASKSET) return 'no taskset on this machine (util-linux)';
  return CPUS < 2 ? `${CPUS} CPU on this machine, split needs 2` : null;
}

export const PLACEMENTS: Placement[] = splitUnavailable() ? ['shared'] : ['split', 'shared'];

function postmasterPid(cl: EmbeddedCluster): number {
  return Number(readFileSync(path.join(cl.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) kids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return kids;
}

/** Every thread of pid onto these CPUs ("0", "0-1"); a process that has just exited is no error. */
function pin(pid: number, cpus: string): void {
  try {
    execFileSync(TASKSET!, ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
  } catch {
    if (existsSync(`/proc/${pid}`)) throw new Error(`taskset -a -p -c ${cpus} ${pid} failed`);
  }
}

let current: Placement | null = null;

/** The server and this process for the placement (nothing to do when it is already in place). */
export function place(cl: EmbeddedCluster, placement: Placement): void {
  if (placement === current || !TASKSET) return;
  const cpus = placement === 'split' ? '0' : `0-${CPUS - 1}`;
  const pm = postmasterPid(cl);
  for (const pid of [pm, ...childrenOf(pm), process.pid]) pin(pid, cpus);
  current = placement;
}

/** The command as spawned for the placement: on CPU 1 when split. */
export function onResponderCpu(placement: Placement, cmd: string, args: string[]): [string, string[]] {
  return placement === 'split' ? [TASKSET!, ['-c', '1', cmd, ...args]] : [cmd, args];
}

/** `taskset -p`'s mask of a process ("1", "3"), as a check that the placement holds. */
export function affinity(pid: number): string {
  if (!TASKSET) return 'n/a';
  const out = execFileSync(TASKSET, ['-p', String(pid)], { encoding: 'utf8' });
  return out.trim().split(': ').pop() ?? out.trim();
}
