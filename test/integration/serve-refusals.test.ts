// What pgrevoke serve counts as an error, on a real server: an identity that maps to no role is
// acknowledged and flagged (/status lastUnmapped), not an error; an identity that maps to a role
// that must not be cut off (a built-in role: the bootstrap superuser postgres, pg_ names being
// refused by the config already; the role the service connects as; a superuser when the service
// is not one) is refused by the cutoff's own checks before anything changes, and that is
// final: journaled once (no retries), audited `refused` with the reason, the provider's request
// answered 2xx all the same, and /status shows it as lastError. A superuser role is cut off when
// the service connects as a superuser (a departing DBA's superuser role is the access that most
// needs cutting), as `pgrevoke cutoff` does.
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginOutcome, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import {
  auditLines,
  baseConfig,
  githubDelivery,
  journal,
  memberRemoved,
  outcomeOf,
  postGithub,
  SCIM_TOKEN,
  serveDir,
  startServe,
  type Service,
  type ServeDir,
} from './serve-harness.js';

const PW = 'pw';

interface Status {
  queueDepth: number;
  lastEvent: { id: string; status: string } | null;
  lastError: { event: string | null; message: string } | null;
  lastUnmapped: { event: string; identity: string } | null;
}

describe.each(MAJORS)('pgrevoke serve: unmapped and refused identities, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const dirs: ServeDir[] = [];
  const services: Service[] = [];

  const IDENTITIES = `
identities:
  - { github: svc-gh, roles: [svc] }
  - { github: builtin-gh, roles: [postgres] }
  - { github: dba-gh, roles: [dba] }
  - { github: dba2-gh, roles: [dba2] }
  - { github: worker-gh, roles: [worker_u] }
`;
  /** A service whose target connects as `user`. */
  const start = async (user: string) => {
    const d = await serveDir(baseConfig(`targets: [ ${JSON.stringify(cl.url(user, PW, 'postgres'))} ]\n${IDENTITIES}`));
    dirs.push(d);
    const s = await startServe(d);
    services.push(s);
    return { d, s };
  };
  const status = async (s: Service) =>
    (await (await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${SCIM_TOKEN}` } })).json()) as Status;
  const deactivate = async (s: Service, login: string) => {
    const r = await postGithub(s, githubDelivery('organization', memberRemoved(login)));
    expect(r.status).toBe(202);
    return ((await r.json()) as { id: string }).id;
  };
  const canLogin = async (role: string) => (await loginOutcome(cl, { user: role, password: PW })) === 'allow';
  /** The event's journal lines: accepted once, no failed attempt, done once with `outcome`. */
  const refusedOnce = async (d: ServeDir, id: string, reason: string) => {
    const outcome = await outcomeOf(d, id);
    expect(outcome.status).toBe('failed');
    const error = (outcome as { error?: string }).error;
    expect(error).toMatch(/^refused: 127\.0\.0\.1:\d+: /);
    expect(error).toContain(reason);
    const lines = (await journal(d)).filter((l) => l.id === id || l.event?.id === id);
    expect(lines.map((l) => l.type)).toEqual(['accepted', 'done']);
    const cut = (await auditLines(d)).filter((l) => l.event?.id === id && l.action === 'serve_cutoff');
    expect(cut).toHaveLength(1);
    expect(cut[0]).toMatchObject({ result: 'refused', reason: 'offboarding' });
    expect(cut[0]!.detail).toContain(reason);
  };

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql(`CREATE ROLE svc SUPERUSER LOGIN PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE dba SUPERUSER LOGIN PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE dba2 SUPERUSER LOGIN PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE worker_u LOGIN PASSWORD '${PW}'`);
    // a service that is not a superuser: CREATEROLE and pg_signal_backend, as docs/cutoff.md allows
    await cl.sql(`CREATE ROLE opr LOGIN CREATEROLE PASSWORD '${PW}'`);
    await cl.sql(`GRANT pg_signal_backend TO opr`);
  });

  afterAll(async () => {
    for (const s of services) s.run.signal('SIGKILL');
    await Promise.all(services.map((s) => s.run.exited));
    await cl?.destroyAll();
    for (const d of dirs) await fs.rm(d.dir, { recursive: true, force: true });
  });

  it('an unmapped identity is lastUnmapped in /status, not lastError', async () => {
    const { d, s } = await start('svc');
    const id = await deactivate(s, 'stranger-gh');
    expect((await outcomeOf(d, id)).status).toBe('unmapped');
    const st = await status(s);
    expect(st.lastError).toBeNull();
    expect(st.lastUnmapped).toMatchObject({ event: id, identity: 'github:stranger-gh' });
    expect(st.lastEvent).toMatchObject({ id, status: 'unmapped' });
  });

  it('the role the service connects as, and a built-in role: refused at once, journaled, audited, lastError', async () => {
    const { d, s } = await start('svc');
    const own = await deactivate(s, 'svc-gh');
    await refusedOnce(d, own, 'refusing to cut off "svc": it is the role you are connected as');
    expect((await status(s)).lastError).toMatchObject({ event: own, message: expect.stringContaining('the role you are connected as') });
    const builtin = await deactivate(s, 'builtin-gh');
    await refusedOnce(d, builtin, 'refusing to cut off "postgres": it is a built-in role');
    const st = await status(s);
    expect(st.lastError).toMatchObject({ event: builtin, message: expect.stringContaining('built-in role') });
    expect(st.lastEvent).toMatchObject({ id: builtin, status: 'failed' });
    expect(st.queueDepth).toBe(0);
    expect(await canLogin('svc')).toBe(true);
    // the worker goes on: a role that may be cut off still is
    const next = await deactivate(s, 'worker-gh');
    expect((await outcomeOf(d, next)).status).toBe('contained');
    expect(await canLogin('worker_u')).toBe(false);
  });

  it('a superuser role: refused when the service is not a superuser; cut off when it is', async () => {
    const { d, s } = await start('opr');
    const id = await deactivate(s, 'dba2-gh');
    await refusedOnce(d, id, 'opr cannot cut off "dba2": altering or terminating a superuser role needs superuser');
    expect((await status(s)).lastError).toMatchObject({ event: id });
    expect(await canLogin('dba2')).toBe(true);

    const su = await start('svc');
    const cut = await deactivate(su.s, 'dba-gh');
    expect((await outcomeOf(su.d, cut)).status).toBe('contained');
    expect(await canLogin('dba')).toBe(false);
  });
});
