// pgrevoke serve's drain on SIGTERM, as a supervisor (systemd, Kubernetes) meets it: the CLI as a
// subprocess, a real server whose role row the test holds locked, so the event's cutoff is caught
// mid-containment. The first SIGTERM stops taking requests (503) and lets the running cutoff
// finish in this process: released, it completes, the journal has its outcome, exit 0. A second
// SIGTERM, or the drain timeout, cancels it as `pgrevoke cutoff` does on a signal: its statement
// is cancelled, the event stays owed in the journal, and the next start completes it.
import { promises as fs } from 'node:fs';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { lockWaiters, loginOutcome, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import {
  baseConfig,
  githubDelivery,
  journal,
  memberRemoved,
  outcomeOf,
  postGithub,
  serveDir,
  startServe,
  type Service,
  type ServeDir,
} from './serve-harness.js';

const PW = 'pw';
const ROLES = ['drain_a', 'drain_b', 'drain_c'];

describe.each(MAJORS)('pgrevoke serve drains on SIGTERM, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const dirs: ServeDir[] = [];
  const services: Service[] = [];

  const dir = async (more = '') => {
    const identities = ROLES.map((r) => `  - { github: ${r}-gh, roles: [${r}] }`).join('\n');
    const d = await serveDir(baseConfig(`targets: [ ${JSON.stringify(cl.dsn())} ]\nidentities:\n${identities}\n${more}`));
    dirs.push(d);
    return d;
  };
  const start = async (d: ServeDir, env: NodeJS.ProcessEnv = {}) => {
    const s = await startServe(d, [], env);
    services.push(s);
    return s;
  };
  const canLogin = async (role: string) => (await loginOutcome(cl, { user: role, password: PW })) === 'allow';
  /** The test holds `role`'s pg_authid row: the cutoff's ALTER ROLE waits on it until released. */
  const holdRole = async (role: string): Promise<pg.Client> => {
    const holder = await cl.connectAs('postgres', cl.password);
    await holder.query('BEGIN');
    await holder.query(`ALTER ROLE ${role} CONNECTION LIMIT 7`);
    return holder;
  };
  const release = async (holder: pg.Client) => {
    await holder.query('ROLLBACK');
    await holder.end();
  };
  /** Deactivate `role` through GitHub; resolves once its cutoff waits on the test's lock. */
  const deactivateHeld = async (s: Service, role: string): Promise<string> => {
    const r = await postGithub(s, githubDelivery('organization', memberRemoved(`${role}-gh`)));
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };
    await waitFor(async () => (await lockWaiters(cl, `%ALTER ROLE%${role}%`)) > 0, 15_000, `the cutoff of ${role} waiting on the lock`);
    return id;
  };
  const exitOf = (s: Service) => {
    let code: number | null | undefined;
    void s.run.exited.then((c) => (code = c));
    return () => code;
  };

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    for (const r of ROLES) await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD '${PW}'`);
  });

  afterAll(async () => {
    for (const s of services) s.run.signal('SIGKILL');
    await Promise.all(services.map((s) => s.run.exited));
    await cl?.destroyAll();
    for (const d of dirs) await fs.rm(d.dir, { recursive: true, force: true });
  });

  it('SIGTERM: new requests get 503, the running cutoff finishes once the lock is released, its outcome journaled, exit 0', async () => {
    const d = await dir();
    const holder = await holdRole('drain_a');
    const s = await start(d);
    const id = await deactivateHeld(s, 'drain_a');
    const exited = exitOf(s);
    s.run.signal('SIGTERM');
    await waitFor(async () => s.stderr().includes('SIGTERM: draining'), 5_000, 'the drain');
    // still draining: a new request is refused, and nothing of it is journaled
    const late = await postGithub(s, githubDelivery('organization', memberRemoved('drain_b-gh')));
    expect(late.status).toBe(503);
    expect(late.headers.get('retry-after')).toBe('5');
    expect((await fetch(`${s.url}/healthz`)).status).toBe(503);
    expect(exited()).toBeUndefined();
    await release(holder);
    expect(await s.run.exited).toBe(0);
    const lines = await journal(d);
    expect(lines.find((l) => l.type === 'done' && l.id === id)?.outcome?.status, s.stderr()).toBe('contained');
    expect(lines.filter((l) => l.type === 'accepted')).toHaveLength(1);
    expect(s.stderr()).toContain('stopped; 0 event(s) left for the next start');
    expect(await canLogin('drain_a')).toBe(false);
    expect(await canLogin('drain_b')).toBe(true);
    const v = await runCli(['verify', 'drain_a', '--dsn', cl.dsn()]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });

  it('a second SIGTERM cancels the running cutoff: exit 0, the event stays owed, the next start completes it', async () => {
    const d = await dir();
    const holder = await holdRole('drain_b');
    const s1 = await start(d);
    const id = await deactivateHeld(s1, 'drain_b');
    s1.run.signal('SIGTERM');
    await waitFor(async () => s1.stderr().includes('SIGTERM: draining'), 5_000, 'the drain');
    s1.run.signal('SIGTERM');
    expect(await s1.run.exited).toBe(0);
    expect(s1.stderr()).toContain('a second SIGTERM: cancelling the running cutoff');
    await release(holder);
    // cancelled before NOLOGIN committed: nothing done, the event still owed
    expect(await canLogin('drain_b')).toBe(true);
    expect((await journal(d)).some((l) => l.type === 'done' && l.id === id)).toBe(false);
    expect(s1.stderr()).toContain('1 event(s) left for the next start');
    const s2 = await start(d);
    expect((await outcomeOf(d, id)).status).toBe('contained');
    expect(await canLogin('drain_b')).toBe(false);
    s2.run.signal('SIGTERM');
    expect(await s2.run.exited).toBe(0);
  });

  it('the drain timeout (drain_timeout) cancels a cutoff that does not finish in time', async () => {
    const d = await dir('drain_timeout: 1s\n');
    const holder = await holdRole('drain_c');
    const s = await start(d);
    const id = await deactivateHeld(s, 'drain_c');
    s.run.signal('SIGTERM');
    expect(await s.run.exited).toBe(0);
    expect(s.stderr()).toContain('the drain timeout (1 s): cancelling the running cutoff');
    await release(holder);
    expect(await canLogin('drain_c')).toBe(true);
    expect((await journal(d)).some((l) => l.type === 'done' && l.id === id)).toBe(false);
  });

  it('a drain timeout that is not a duration is refused at start (exit 2, naming the file, line and key)', async () => {
    const d = await dir('drain_timeout: soon\n');
    const r = await runCli(['serve', '--config', d.config], d.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/serve\.yaml:\d+: drain_timeout/);
  });
});
