// The local journal's compaction (journal_keep) through the CLI on a real server: after a restart,
// which rewrites the journal, a delivery done within the window is still answered as a duplicate
// and not run again; one done longer ago than journal_keep is forgotten (its lines are gone, and a
// redelivery of it is accepted as new).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import {
  baseConfig,
  githubDelivery,
  journal,
  memberRemoved,
  outcomeOf,
  postGithub,
  serveDir,
  startServe,
  stopServe,
  type ServeDir,
} from './serve-harness.js';

describe.each(MAJORS)('pgrevoke serve journal compaction on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let d: ServeDir;

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'pw'`);
    d = await serveDir(
      baseConfig(`targets: [ ${JSON.stringify(cl.dsn())} ]\njournal_keep: 2d\nidentities:\n  - { github: alice-gh, roles: [alice] }\n`),
    );
  });

  afterAll(async () => {
    await cl?.destroyAll();
    if (d) await fs.rm(d.dir, { recursive: true, force: true });
  });

  it('a redelivery within journal_keep is still a duplicate after a restart; an older one is forgotten', async () => {
    const s1 = await startServe(d);
    const recent = githubDelivery('organization', memberRemoved('alice-gh'));
    const r = await postGithub(s1, recent);
    const { id } = (await r.json()) as { id: string };
    expect((await outcomeOf(d, id)).status).toBe('contained');
    expect(await stopServe(s1)).toBe(0);

    // an event done three days ago, as an earlier run would have left it
    const file = path.join(d.state, 'serve', 'journal.jsonl');
    const ago = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
    const oldDelivery = 'c0ffee00-0000-4000-8000-000000000001';
    const old = {
      id: 'aaaaaaaaaaaaaaaa',
      key: `github:${oldDelivery}`,
      provider: 'github',
      action: 'deactivate',
      identity: { github: 'alice-gh' },
      summary: 'organization member_removed',
      receivedAt: ago(3),
    };
    const outcome = { status: 'contained', records: [], detail: null, error: null, attempts: 1 };
    await fs.appendFile(
      file,
      `${JSON.stringify({ type: 'accepted', event: old, roles: ['alice'] })}\n${JSON.stringify({ type: 'done', id: old.id, at: ago(3), outcome })}\n`,
    );
    const lines = (await journal(d)).length;

    const s2 = await startServe(d);
    // rewritten without the old event
    const now = await journal(d);
    expect(now).toHaveLength(lines - 2);
    expect(now.some((l) => l.event?.id === old.id || l.id === old.id)).toBe(false);
    const again = await postGithub(s2, recent);
    expect(await again.json()).toEqual(expect.objectContaining({ id, duplicate: true }));
    const oldAgain = await postGithub(s2, githubDelivery('organization', memberRemoved('alice-gh'), { delivery: oldDelivery }));
    const fresh = (await oldAgain.json()) as { id: string; duplicate: boolean };
    expect(fresh.duplicate).toBe(false);
    expect(fresh.id).not.toBe(old.id);
    expect((await outcomeOf(d, fresh.id)).status).toBe('contained');
    expect(await stopServe(s2)).toBe(0);
  });
});
