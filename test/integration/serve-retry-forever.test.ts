// A deactivation is never given up on (issue 17's red team): a node down longer than a
// reactivation's retries (12 attempts, about 10 minutes at the real backoff) still loses the role's
// LOGIN once it is back. The worker runs in this process with a short backoff (its constructor
// option), against a real server stopped and then started again; the backoff timer is what brings
// every retry, so the attempts counted past the old limit show it fires.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServeConfig } from '../../src/serve/config.js';
import { ServeJournal } from '../../src/serve/journal.js';
import { MAX_ATTEMPTS, Worker, type ServeStatus } from '../../src/serve/worker.js';
import { loginOutcome, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const PW = 'pw';

describe.each(MAJORS)('serve: a deactivation is retried until it is done, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir: string;
  let worker: Worker | undefined;

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD '${PW}'`);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-serve-retry-'));
    // readRecords and the state directory follow the environment
    process.env.PGREVOKE_STATE_DIR = path.join(dir, 'state');
  });

  afterAll(async () => {
    await worker?.drain(1_000);
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('past the reactivations’ last attempt, still owed and counted; cut off once the node is back', { timeout: 120_000 }, async () => {
    const file = path.join(dir, 'serve.yaml');
    await fs.writeFile(
      file,
      `listen: 127.0.0.1:0\ngithub: { secret_env: PGREVOKE_GITHUB_SECRET, org: acme }\naudit_log: audit.jsonl\ntargets: [ ${JSON.stringify(cl.dsn())} ]\nidentities:\n  - { github: alice-gh, roles: [alice] }\n`,
    );
    const cfg = await loadServeConfig(file, { ...process.env, PGREVOKE_GITHUB_SECRET: 'test-secret' });
    const journal = await ServeJournal.open({ dryRun: false });
    const status: ServeStatus = { lastEvent: null, lastError: null, lastUnmapped: null };
    const log: string[] = [];
    worker = new Worker({
      journal,
      config: () => cfg,
      dryRun: false,
      audit: async () => undefined,
      auditBase: () => ({ osUser: 'test', host: 'test', reason: 'offboarding' }),
      log: (l) => log.push(l),
      status,
      backoffMs: () => 20,
    });
    await cl.stop();
    const { entry } = await journal.accept(
      {
        provider: 'github',
        key: 'github:retry-1',
        action: 'deactivate',
        identity: { github: 'alice-gh' },
        summary: 'member_removed alice-gh',
      },
      ['alice'],
    );
    worker.kick();
    await waitFor(
      async () => (entry.attempts > MAX_ATTEMPTS + 3 || entry.done ? true : undefined),
      90_000,
      'attempts past the old limit',
      50,
    );
    expect(entry.done, log.join('\n')).toBeNull();
    expect(worker.depth).toBe(1);
    expect(status.lastError?.event).toBe(entry.event.id);
    expect(log.some((l) => /giving up/.test(l))).toBe(false);
    // the journal has every attempt: a restart counts on
    const lines = (await fs.readFile(path.join(dir, 'state', 'serve', 'journal.jsonl'), 'utf8')).split('\n').filter(Boolean);
    expect(lines.filter((l) => (JSON.parse(l) as { type: string }).type === 'attempt').length).toBeGreaterThan(MAX_ATTEMPTS);

    await cl.start();
    await waitFor(async () => (entry.done ? true : undefined), 60_000, 'the cutoff done', 50).catch((err: Error) => {
      throw new Error(`${err.message}; attempts ${entry.attempts}; log: ${log.slice(-5).join(' | ')}`);
    });
    expect(entry.done?.status, log.join('\n')).toBe('contained');
    expect(await loginOutcome(cl, { user: 'alice', password: PW })).not.toBe('allow');
    expect(worker.depth).toBe(0);
  });
});
