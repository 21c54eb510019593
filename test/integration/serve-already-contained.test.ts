// A cutoff of a role already contained is a no-op with a record (issue 17): the same person removed
// twice, by two providers (GitHub's member_removed, then the SCIM deactivation of the same person),
// is two events, each run once; the second changes nothing on the server (the role's attributes and
// pg_hba.conf as the first left them) and still has its record and audit lines. A later SCIM
// reactivation undoes only what its own deactivation did (nothing): GitHub's removal still stands.
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginOutcome, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import {
  activePatch,
  auditLines,
  baseConfig,
  githubDelivery,
  memberRemoved,
  outcomeOf,
  postGithub,
  scimRequest,
  type ServeDir,
  serveDir,
  type Service,
  startServe,
} from './serve-harness.js';

const PW = 'pw';
const USER = 'frank@example.com';

describe.each(MAJORS)('serve: a role already contained, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let d: ServeDir;
  let s: Service | null = null;

  const scim = (method: string, p: string, body?: unknown) => scimRequest(s!, method, p, body);
  const attrs = async () =>
    (
      await cl.sql<{ login: boolean; limit: number }>(
        "SELECT rolcanlogin AS login, rolconnlimit AS limit FROM pg_roles WHERE rolname = 'frank'",
      )
    )[0];
  const patchActive = (active: boolean) => activePatch(active, 'okta');

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql(`CREATE ROLE frank LOGIN CONNECTION LIMIT 7 PASSWORD '${PW}'`);
    d = await serveDir(
      baseConfig(
        `targets: [ ${JSON.stringify(cl.dsn())} ]\non_reactivate: restore\nidentities:\n  - { user: ${USER}, github: frank-gh, roles: [frank] }\n`,
      ),
    );
  });

  afterAll(async () => {
    s?.run.signal('SIGKILL');
    await s?.run.exited;
    await cl?.destroyAll();
    if (d) await fs.rm(d.dir, { recursive: true, force: true });
  });

  it("GitHub then SCIM remove the same person: the second cutoff changes nothing and is recorded; a SCIM reactivation leaves GitHub's cutoff standing", async () => {
    s = await startServe(d);
    const created = await scim('POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: USER, active: true });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as { id: string }).id;

    const r1 = await postGithub(s, githubDelivery('organization', memberRemoved('frank-gh')));
    expect(r1.status).toBe(202);
    const first = await outcomeOf(d, ((await r1.json()) as { id: string }).id);
    expect(first.status).toBe('contained');
    const after1 = await attrs();
    expect(after1).toEqual({ login: false, limit: 0 });
    const hba1 = await fs.readFile(cl.hbaFile, 'utf8');

    const r2 = await scim('PATCH', `/Users/${id}`, patchActive(false));
    expect(r2.status).toBe(200);
    const lines = await auditLines(d);
    const ev2 = lines.filter((l) => l.event?.provider === 'scim' && l.action === 'serve_received').at(-1)!.event!.id;
    const out2 = await outcomeOf(d, ev2);
    expect(out2.status).toBe('contained');
    expect(out2.records).toHaveLength(1);
    expect(out2.records[0]).not.toBe(first.records[0]);
    expect(await attrs()).toEqual(after1);
    expect(await fs.readFile(cl.hbaFile, 'utf8')).toBe(hba1);
    const cut2 = (await auditLines(d)).find((l) => l.event?.id === ev2 && l.action === 'serve_cutoff');
    expect(cut2?.result).toBe('contained');

    const r3 = await scim('PATCH', `/Users/${id}`, patchActive(true));
    expect(r3.status).toBe(200);
    const ev3 = (await auditLines(d)).filter((l) => l.event?.provider === 'scim' && l.action === 'serve_received').at(-1)!.event!.id;
    // the SCIM deactivation found the role cut off by GitHub's event: undoing it must not undo that one
    const out3 = await outcomeOf(d, ev3);
    expect(out3.status).toBe('nothing_to_restore');
    const restore = (await auditLines(d)).find((l) => l.event?.id === ev3 && l.action === 'serve_restore');
    expect(restore?.detail).toContain(first.records[0]);
    expect(await attrs()).toEqual(after1);
    expect(await loginOutcome(cl, { user: 'frank', password: PW })).not.toBe('allow');
  });
});
