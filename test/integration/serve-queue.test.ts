// The shared queue (queue: postgresql://...) on real servers: two pgrevoke serve replicas, each with
// a state directory of its own (two hosts), on one queue table. The queue user is an ordinary role
// with CREATE on its database only, its password in a pgpass file (never printed). One GitHub
// delivery, sent twice to each replica, runs once in all; a replica SIGKILLed while its cutoff waits
// on a lock the test holds loses its claim when the lease runs out, and the other replica takes the
// event over and completes it; an event never runs ahead of an older one owed for one of its roles,
// whichever replica holds that one, while other roles' events go on.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { loginOutcome, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import {
  auditLines,
  baseConfig,
  githubDelivery,
  memberRemoved,
  postGithub,
  serveDir,
  startServe,
  stopServe,
  type Service,
  type ServeDir,
} from './serve-harness.js';

const PW = 'pw';
const QUEUE_PW = 'queue-secret-pw-7f3a';
const ROLES = ['alice', 'bob', 'carol', 'dave'];
const IDENTITIES = `
identities:
${ROLES.map((r) => `  - { github: ${r}-gh, roles: [${r}] }`).join('\n')}
`;

interface QueueRow {
  id: string;
  key: string;
  roles: string[] | null;
  attempts: number;
  lease_owner: string | null;
  done_at: Date | null;
  done_by: string | null;
  outcome: { status: string; records: string[] } | null;
}

describe.each(MAJORS)('pgrevoke serve, shared queue, on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let queueDb: pg.Client;
  let a: ServeDir;
  let b: ServeDir;
  const services: Service[] = [];

  const rows = async (where = 'true', values: unknown[] = []) =>
    (await queueDb.query<QueueRow>(`SELECT * FROM pgrevoke.serve_queue WHERE ${where} ORDER BY seq`, values)).rows;
  const rowOf = async (id: string) => (await rows('id = $1', [id]))[0];
  const doneRow = (id: string, ms = 30_000) =>
    waitFor(async () => ((await rowOf(id))?.done_at ? rowOf(id) : undefined), ms, `event ${id} done in the queue`);
  const ownerOf = (s: Service) => /claiming as (\S+)/.exec(s.stderr())![1]!;
  const start = async (d: ServeDir) => {
    const s = await startServe(d);
    services.push(s);
    return s;
  };
  const lockWaiter = (role: string) =>
    waitFor(
      async () =>
        (
          await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE $1 AND pid <> pg_backend_pid()`, [
            `%ALTER ROLE%${role}%`,
          ])
        ).length > 0,
      15_000,
      `a cutoff's ALTER ROLE waiting on the test's lock on ${role}`,
    );
  const holdRole = async (role: string) => {
    const holder = await cl.connectAs('postgres', cl.password);
    await holder.query('BEGIN');
    await holder.query(`ALTER ROLE ${role} CONNECTION LIMIT 7`);
    return async () => {
      await holder.query('ROLLBACK');
      await holder.end();
    };
  };
  const recordsIn = async (d: ServeDir) =>
    (await fs.readdir(path.join(d.state, 'records')).catch(() => [])).filter((f) => f.endsWith('.jsonl'));

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    for (const r of ROLES) await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD '${PW}'`);
    await cl.sql('CREATE DATABASE queue');
    // the queue user: no superuser, nothing on the targets; CREATE on its database makes the schema and table
    await cl.sql(`CREATE ROLE queue_user LOGIN PASSWORD '${QUEUE_PW}'`);
    await cl.sql('GRANT CREATE ON DATABASE queue TO queue_user');
    queueDb = await cl.connectAs('postgres', cl.password, 'queue');
    const config = baseConfig(
      `targets: [ ${JSON.stringify(cl.dsn())} ]\nqueue: postgresql://queue_user@127.0.0.1:${cl.port}/queue\nqueue_lease: 3s\n${IDENTITIES}`,
    );
    a = await serveDir(config);
    b = await serveDir(config);
    for (const d of [a, b]) {
      const pgpass = path.join(d.dir, 'pgpass');
      await fs.writeFile(pgpass, `127.0.0.1:${cl.port}:queue:queue_user:${QUEUE_PW}\n`, { mode: 0o600 });
      d.env.PGPASSFILE = pgpass;
    }
  });

  // a test that failed midway leaves no replica holding a state directory for the next
  afterEach(async () => {
    for (const s of services) s.run.signal('SIGKILL');
    await Promise.all(services.splice(0).map((s) => s.run.exited));
  });

  afterAll(async () => {
    await queueDb?.end().catch(() => undefined);
    await cl?.destroyAll();
    for (const x of [a, b]) if (x) await fs.rm(x.dir, { recursive: true, force: true });
  });

  it('one delivery sent twice to each of two replicas runs once in all; the table is made by the queue user; no password printed', async () => {
    const [sa, sb] = await Promise.all([start(a), start(b)]);
    const delivery = githubDelivery('organization', memberRemoved('alice-gh'));
    // the first two at once, one to each replica; then one more to each
    const first = await Promise.all([postGithub(sa, delivery), postGithub(sb, delivery)]);
    const second = await Promise.all([postGithub(sa, delivery), postGithub(sb, delivery)]);
    const bodies = (await Promise.all([...first, ...second].map(async (r) => [r.status, await r.json()] as const))) as [
      number,
      { id: string; duplicate: boolean },
    ][];
    expect(bodies.map(([s]) => s)).toEqual([202, 202, 202, 202]);
    const ids = new Set(bodies.map(([, x]) => x.id));
    expect(ids.size).toBe(1);
    expect(bodies.filter(([, x]) => !x.duplicate)).toHaveLength(1);
    const [id] = [...ids] as [string];

    const row = (await doneRow(id))!;
    expect(row.outcome?.status).toBe('contained');
    expect(await rows('key = $1', [`github:${delivery.headers['x-github-delivery']}`])).toHaveLength(1);
    expect(await loginOutcome(cl, { user: 'alice', password: PW })).not.toBe('allow');
    // a moment for a second run to show itself, if there were one
    await new Promise((r) => setTimeout(r, 1500));
    const cutoffs = [...(await auditLines(a)), ...(await auditLines(b))].filter((l) => l.event?.id === id && l.action === 'serve_cutoff');
    expect(cutoffs).toHaveLength(1);
    expect((await recordsIn(a)).length + (await recordsIn(b)).length).toBe(1);
    const received = [...(await auditLines(a)), ...(await auditLines(b))].filter((l) => l.action === 'serve_received');
    expect(received.map((l) => l.result).sort()).toEqual(['accepted', 'duplicate', 'duplicate', 'duplicate']);

    const owner = (await queueDb.query<{ owner: string }>(`SELECT tableowner AS owner FROM pg_tables WHERE tablename = 'serve_queue'`))
      .rows[0];
    expect(owner?.owner).toBe('queue_user');
    for (const s of [sa, sb]) {
      expect(s.stderr()).toContain('shared queue: table pgrevoke.serve_queue on queue_user@127.0.0.1');
      expect(s.stderr()).not.toContain(QUEUE_PW);
    }
    expect(await stopServe(sa)).toBe(0);
    expect(await stopServe(sb)).toBe(0);
  });

  it('a queue user that may not create the table is exit 2 at start, saying why, and never prints a password given in the DSN', async () => {
    const bad = await serveDir(
      baseConfig(
        `targets: [ ${JSON.stringify(cl.dsn())} ]\nqueue: postgresql://queue_user:${QUEUE_PW}@127.0.0.1:${cl.port}/postgres\n${IDENTITIES}`,
      ),
    );
    try {
      const r = await runCli(['serve', '--config', bad.config], bad.env, { timeoutMs: 30_000 });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('the queue (table pgrevoke.serve_queue on queue_user@127.0.0.1');
      expect(r.stderr).toContain('42501');
      expect(r.stderr).not.toContain(QUEUE_PW);
    } finally {
      await fs.rm(bad.dir, { recursive: true, force: true });
    }
  });

  it('SIGKILL of the replica whose cutoff waits on a lock: its lease runs out, the other takes the event over and completes it', async () => {
    const release = await holdRole('bob');
    const [sa, sb] = await Promise.all([start(a), start(b)]);
    const r = await postGithub(sa, githubDelivery('organization', memberRemoved('bob-gh')));
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };
    await lockWaiter('bob');
    const holder = (await rowOf(id))!.lease_owner;
    const [dead, alive] = holder === ownerOf(sa) ? [sa, sb] : [sb, sa];
    expect(holder).toBe(ownerOf(dead));
    dead.run.signal('SIGKILL');
    await dead.run.exited;
    // not done; once the lease (3 s) has run out, the live replica claims it
    await waitFor(async () => (await rowOf(id))!.lease_owner === ownerOf(alive), 20_000, 'the other replica to take the event over');
    expect((await rowOf(id))!.done_at).toBeNull();
    await release();
    const row = (await doneRow(id))!;
    expect(row.outcome?.status).toBe('contained');
    expect(row.done_by).toBe(ownerOf(alive));
    expect(await loginOutcome(cl, { user: 'bob', password: PW })).not.toBe('allow');
    const v = await runCli(['verify', 'bob', '--dsn', cl.dsn()]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(await stopServe(alive)).toBe(0);
  });

  it("per role, in order across replicas: carol's second event waits for her first (held on a lock) on the idle replica; dave's goes on", async () => {
    const release = await holdRole('carol');
    const [sa, sb] = await Promise.all([start(a), start(b)]);
    const post = async (s: Service, login: string) =>
      ((await (await postGithub(s, githubDelivery('organization', memberRemoved(login)))).json()) as { id: string }).id;
    const c1 = await post(sa, 'carol-gh');
    await lockWaiter('carol');
    const c1Owner = (await rowOf(c1))!.lease_owner;
    const idle = c1Owner === ownerOf(sa) ? sb : sa;
    // the idle replica is given carol's second event and dave's
    const c2 = await post(idle, 'carol-gh');
    const d1 = await post(idle, 'dave-gh');
    expect((await doneRow(d1))!.outcome?.status).toBe('contained');
    // polls of both replicas have passed since: carol's second is still unclaimed
    await new Promise((r) => setTimeout(r, 2500));
    const waiting = (await rowOf(c2))!;
    expect(waiting.lease_owner).toBeNull();
    expect(waiting.done_at).toBeNull();
    await release();
    const first = (await doneRow(c1))!;
    const second = (await doneRow(c2))!;
    expect(first.outcome?.status).toBe('contained');
    expect(second.outcome?.status).toBe('contained');
    expect(second.done_at!.getTime()).toBeGreaterThanOrEqual(first.done_at!.getTime());
    expect(await stopServe(sa)).toBe(0);
    expect(await stopServe(sb)).toBe(0);
  });
});
