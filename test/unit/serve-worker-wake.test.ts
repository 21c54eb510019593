// The worker's backoff timer (issue 17's red team: retries stopped, the next one never fired). The
// loop ends when the queue has nothing due, then asks when to look again; an event whose backoff
// ends between the two is overdue, and the local journal's nextDue() names only times still ahead,
// so no timer was set and the event waited for the next accepted one. Here the claim takes 15 ms to
// answer "nothing due" (a slow disk, a busy loop), so every backoff (5 ms) ends in that gap; the
// target is a closed port, so each attempt fails. A real journal, a real cutoff attempt.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadServeConfig } from '../../src/serve/config.js';
import { ServeJournal } from '../../src/serve/journal.js';
import type { ServeQueue } from '../../src/serve/queue.js';
import { Worker, type ServeStatus } from '../../src/serve/worker.js';
import { waitFor } from '../helpers/wait.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

describe('serve worker: the next attempt comes', () => {
  it('a backoff that ends while the loop is finishing still brings the retry', { timeout: 30_000 }, async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-serve-wake-'));
    dirs.push(dir);
    process.env.PGREVOKE_STATE_DIR = path.join(dir, 'state');
    const file = path.join(dir, 'serve.yaml');
    await fs.writeFile(
      file,
      'listen: 127.0.0.1:0\ngithub: { secret_env: S, org: acme }\naudit_log: audit.jsonl\ntargets: [ "host=127.0.0.1 port=1 user=x dbname=postgres connect_timeout=2" ]\nidentities:\n  - { github: alice-gh, roles: [alice] }\n',
    );
    const cfg = await loadServeConfig(file, { ...process.env, S: 'secret' });
    const real = await ServeJournal.open({ dryRun: false });
    const journal: ServeQueue = {
      where: real.where,
      accept: (input, roles) => real.accept(input, roles),
      claim: async () => {
        const next = await real.claim();
        if (!next) await new Promise((r) => setTimeout(r, 15));
        return next;
      },
      attempt: (entry, error, retryInMs) => real.attempt(entry, error, retryInMs),
      finish: (entry, outcome) => real.finish(entry, outcome),
      depth: () => real.depth(),
      nextDue: () => real.nextDue(),
      close: () => real.close(),
    };
    const status: ServeStatus = { lastEvent: null, lastError: null, lastUnmapped: null };
    const log: string[] = [];
    const worker = new Worker({
      journal,
      config: () => cfg,
      dryRun: false,
      audit: async () => undefined,
      auditBase: () => ({ osUser: 'test', host: 'test', reason: 'offboarding' }),
      log: (l) => log.push(l),
      status,
      backoffMs: () => 5,
    });
    const { entry } = await real.accept(
      {
        provider: 'github',
        key: 'github:wake-1',
        action: 'deactivate',
        identity: { github: 'alice-gh' },
        summary: 'member_removed alice-gh',
      },
      ['alice'],
    );
    worker.kick();
    await waitFor(async () => (entry.attempts >= 4 ? true : undefined), 20_000, 'four attempts', 20).catch((err: Error) => {
      throw new Error(`${err.message}: ${entry.attempts} attempt(s); ${log.slice(-3).join(' | ')}`);
    });
    await worker.drain(1_000);
    expect(entry.done).toBeNull();
  });
});
