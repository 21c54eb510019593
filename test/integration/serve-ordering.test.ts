// The per-role ordering rule of pgrevoke serve end to end (an event never runs ahead of an older
// event still owed for one of its roles), on a real server, as an identity provider meets it: a
// SCIM deactivation whose cutoff is held up by a lock the test holds on the role (it fails and
// waits out its backoff), then the same user's reactivation (on_reactivate: restore), accepted
// during that backoff. The reactivation must wait for the deactivation: it runs after it, restores
// from that cutoff's record, and the person can log in again. Were it to run first, the retried
// deactivation would then cut off a person the provider had just let back in.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockWaiters, loginOutcome, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import {
  acceptedEventId,
  activePatch,
  auditLines,
  baseConfig,
  journal,
  outcomeOf,
  scimRequest,
  type ServeDir,
  serveDir,
  type Service,
  startServe,
} from './serve-harness.js';

const PW = 'pw';
const PLAYBOOKS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../playbooks');
const USER = 'ord@example.com';

describe.each(MAJORS)('pgrevoke serve: a reactivation waits for the deactivation it undoes, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let d: ServeDir;
  let s: Service | undefined;

  const scim = (method: string, p: string, body?: unknown) => scimRequest(s!, method, p, body);
  const active = (value: boolean) => activePatch(value);
  const eventOf = (action: string) => acceptedEventId(d, action);
  const canLogin = async () => (await loginOutcome(cl, { user: 'ord', password: PW })) === 'allow';

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql(`CREATE ROLE ord LOGIN PASSWORD '${PW}'`);
    // the default playbook with a 2 s settle timeout, which also bounds how long containment waits on a lock
    const playbook = (await fs.readFile(path.join(PLAYBOOKS, 'compromised-credential.yaml'), 'utf8')).replace(
      'timeout_s: 10',
      'timeout_s: 2',
    );
    expect(playbook).toContain('timeout_s: 2');
    d = await serveDir(
      baseConfig(
        `targets: [ ${JSON.stringify(cl.dsn())} ]\nplaybook: short.yaml\non_reactivate: restore\nidentities:\n  - { user: ${USER}, roles: [ord] }\n`,
      ),
    );
    await fs.writeFile(path.join(d.dir, 'short.yaml'), playbook.replace('name: compromised-credential', 'name: short-settle'));
  });

  afterAll(async () => {
    s?.run.signal('SIGKILL');
    await s?.run.exited;
    await cl?.destroyAll();
    if (d) await fs.rm(d.dir, { recursive: true, force: true });
  });

  it('the reactivation runs after the held deactivation is contained, restores from its record, and the role can log in', async () => {
    s = await startServe(d);
    const created = await scim('POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: USER, active: true });
    expect(created.status).toBe(201);
    const uid = ((await created.json()) as { id: string }).id;

    // the test holds ord's pg_authid row: the cutoff's ALTER ROLE waits on it, past the settle timeout
    const holder = await cl.connectAs('postgres', cl.password);
    await holder.query('BEGIN');
    await holder.query('ALTER ROLE ord CONNECTION LIMIT 7');
    expect((await scim('PATCH', `/Users/${uid}`, active(false))).status).toBe(200);
    const off = await eventOf('deactivate');
    await waitFor(async () => (await lockWaiters(cl, '%ALTER ROLE%ord%')) > 0, 15_000, 'the cutoff waiting on the lock');
    // its first attempt fails on the lock: the event waits out a backoff, still owed
    await waitFor(async () => (await journal(d)).some((l) => l.type === 'attempt' && l.id === off), 20_000, 'the failed attempt');

    // the provider lets the person back in meanwhile; then the lock goes
    expect((await scim('PATCH', `/Users/${uid}`, active(true))).status).toBe(200);
    const on = await eventOf('reactivate');
    await holder.query('ROLLBACK');
    await holder.end();

    const contained = await outcomeOf(d, off, 60_000);
    expect(contained.status).toBe('contained');
    const restored = await outcomeOf(d, on, 60_000);
    expect(restored.status, JSON.stringify(restored)).toBe('restored');
    // in that order: the reactivation's outcome comes after the deactivation's, from the record of the cutoff that contained
    const done = (await journal(d)).filter((l) => l.type === 'done').map((l) => l.id);
    expect(done.indexOf(on)).toBeGreaterThan(done.indexOf(off));
    expect(restored.records).toEqual([contained.records.at(-1)]);
    expect(await canLogin()).toBe(true);
    const audit = (await auditLines(d)).filter((l) => l.action === 'serve_cutoff' || l.action === 'serve_restore');
    expect(audit.map((l) => `${l.action}:${l.result}`).filter((x) => !x.endsWith(':retry'))).toEqual([
      'serve_cutoff:contained',
      'serve_restore:restored',
    ]);
    s.run.signal('SIGTERM');
    expect(await s.run.exited).toBe(0);
  });
});
