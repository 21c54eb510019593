// pgrevoke serve end to end, as an identity provider meets it: the CLI as a subprocess, real HTTP,
// real PostgreSQL targets. A signed GitHub member_removed cuts the mapped role off (its
// reconnecting sessions end, `pgrevoke verify` passes, every step audited), and the same delivery
// again is answered as a duplicate and not run twice; an unmapped login is acknowledged and
// flagged; Okta's and Entra's documented create-then-deactivate requests, replayed verbatim, cut
// their users' roles off, and Okta's reactivation restores the role (on_reactivate: restore); a
// SIGKILL between the 2xx and the cutoff (the worker held up by a lock the test holds on the role)
// is completed by the next start; --dry-run plans and records and changes nothing.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { loginOutcome, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
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
  stopServe,
  type Service,
  type ServeDir,
} from './serve-harness.js';

const PW = 'pw';
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/scim');
const fixture = (name: string) => fs.readFile(path.join(FIXTURES, name), 'utf8');
const OKTA_USER = 'test.user@okta.local';
const ENTRA_USER = 'Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee';
const ROLES = ['alice', 'bob', 'carol', 'dan', 'erin', 'okta_user', 'entra_user'];

const IDENTITIES = `
identities:
  - { github: alice-gh, roles: [alice] }
  - { github: bob-gh, roles: [bob] }
  - { github: carol-gh, roles: [carol] }
  - { github: dan-gh, roles: [dan] }
  - { user: ${OKTA_USER}, roles: [okta_user] }
  - { user: ${ENTRA_USER}, roles: [entra_user] }
`;

describe.each(MAJORS)('pgrevoke serve against PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let d: ServeDir;
  const extra: ServeDir[] = [];
  const services: Service[] = [];
  let stopLoops = false;
  const loops: Promise<void>[] = [];

  const start = async (dir: ServeDir, args: string[] = []) => {
    const s = await startServe(dir, args);
    services.push(s);
    return s;
  };
  const sessionsOf = async (role: string) =>
    (await cl.sql<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [role]))[0]!.n;
  const canLogin = async (role: string) => (await loginOutcome(cl, { user: role, password: PW })) === 'allow';
  /** A client that keeps reconnecting as `role` (every 50 ms while it is refused), holding each session open. */
  const reconnecting = (role: string) => {
    const held: pg.Client[] = [];
    loops.push(
      (async () => {
        while (!stopLoops) {
          const c = await cl.connectAs(role, PW).catch(() => null);
          if (c) held.push(c);
          await new Promise((r) => setTimeout(r, 50));
        }
      })(),
    );
    return held;
  };
  const scim = (s: Service, method: string, p: string, body?: string) =>
    fetch(`${s.url}/scim/v2${p}`, {
      method,
      headers: { authorization: `Bearer ${SCIM_TOKEN}`, ...(body ? { 'content-type': 'application/scim+json' } : {}) },
      body,
    });
  const config = (more = '') => baseConfig(`targets: [ ${JSON.stringify(cl.dsn())} ]\non_reactivate: restore\n${IDENTITIES}${more}`);

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    for (const r of ROLES) await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD '${PW}'`);
    d = await serveDir(config());
  });

  afterAll(async () => {
    stopLoops = true;
    await Promise.all(loops);
    for (const s of services) s.run.signal('SIGKILL');
    await Promise.all(services.map((s) => s.run.exited));
    await cl?.destroyAll();
    for (const x of [d, ...extra]) if (x) await fs.rm(x.dir, { recursive: true, force: true });
  });

  it('GitHub member_removed: the role is cut off on the 2xx (reconnecting sessions end, verify passes), audited; a redelivery is not run twice', async () => {
    const s = await start(d);
    reconnecting('alice');
    await waitFor(async () => (await sessionsOf('alice')) >= 2, 10_000, "alice's sessions");
    const delivery = githubDelivery('organization', memberRemoved('alice-gh'));
    const r = await postGithub(s, delivery);
    expect(r.status).toBe(202);
    const body = (await r.json()) as { id: string; duplicate: boolean };
    expect(body.duplicate).toBe(false);
    // the journal had the event before the answer went out
    expect((await journal(d)).some((l) => l.type === 'accepted' && l.event?.id === body.id)).toBe(true);
    const outcome = await outcomeOf(d, body.id);
    expect(outcome.status).toBe('contained');
    expect(outcome.records).toHaveLength(1);
    // the reconnecting client gets no session back
    expect(await sessionsOf('alice')).toBe(0);
    expect(await canLogin('alice')).toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(await sessionsOf('alice')).toBe(0);
    const verify = await runCli(['verify', 'alice', '--dsn', cl.dsn()]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);

    const audit = (await auditLines(d)).filter((l) => l.event?.id === body.id);
    expect(audit.map((l) => `${l.action}:${l.result}`)).toEqual(
      expect.arrayContaining(['serve_received:accepted', 'serve_mapped:mapped', 'contain:done', 'serve_cutoff:contained']),
    );
    expect(new Set(audit.map((l) => l.reason))).toEqual(new Set(['offboarding']));
    expect(audit.find((l) => l.action === 'serve_cutoff')!.detail).toContain(outcome.records[0]);

    // GitHub redelivers with the same X-GitHub-Delivery
    const again = await postGithub(s, delivery);
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual({ accepted: true, id: body.id, duplicate: true });
    const lines = await journal(d);
    expect(lines.filter((l) => l.type === 'accepted' && l.event?.id === body.id)).toHaveLength(1);
    expect(lines.filter((l) => l.type === 'done' && l.id === body.id)).toHaveLength(1);
    expect((await auditLines(d)).filter((l) => l.event?.id === body.id && l.result === 'duplicate')).toHaveLength(1);
    const st = await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${SCIM_TOKEN}` } });
    expect(await st.json()).toMatchObject({ queueDepth: 0, lastEvent: { id: body.id, provider: 'github', status: 'contained' } });
    expect(await stopServe(s)).toBe(0);
  });

  it('an unmapped GitHub login: 202, acknowledged, nothing done, flagged in the audit log and /status', async () => {
    const s = await start(d);
    const r = await postGithub(s, githubDelivery('organization', memberRemoved('stranger-gh')));
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };
    expect((await outcomeOf(d, id)).status).toBe('unmapped');
    const mapped = (await auditLines(d)).find((l) => l.event?.id === id && l.action === 'serve_mapped')!;
    expect(mapped.result).toBe('unmapped');
    expect(mapped.detail).toContain('no identities rule matches');
    const st = (await (await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${SCIM_TOKEN}` } })).json()) as {
      lastError: unknown;
      lastUnmapped: { event: string; identity: string };
    };
    // flagged, not an error
    expect(st.lastUnmapped).toMatchObject({ event: id, identity: 'github:stranger-gh' });
    expect(st.lastError).toBeNull();
    expect(await stopServe(s)).toBe(0);
  });

  it("Okta's and Entra's documented create-then-deactivate requests cut their roles off; Okta's reactivation restores", async () => {
    const s = await start(d);
    reconnecting('okta_user');
    reconnecting('entra_user');
    await waitFor(async () => (await sessionsOf('okta_user')) > 0 && (await sessionsOf('entra_user')) > 0, 10_000, 'the sessions');
    const okta = await scim(s, 'POST', '/Users', await fixture('okta-create-user.request.json'));
    expect(okta.status).toBe(201);
    const oktaId = ((await okta.json()) as { id: string }).id;
    const entra = await scim(s, 'POST', '/Users', await fixture('entra-create-user.request.json'));
    expect(entra.status).toBe(201);
    const entraId = ((await entra.json()) as { id: string }).id;
    // creating users touches no database
    expect(await canLogin('okta_user')).toBe(true);

    expect((await scim(s, 'PATCH', `/Users/${oktaId}`, await fixture('okta-deactivate-user.request.json'))).status).toBe(200);
    expect((await scim(s, 'PATCH', `/Users/${entraId}`, await fixture('entra-compat-disable-user.without-flag.request.json'))).status).toBe(
      200,
    );
    const idOf = async (role: string) =>
      waitFor(
        async () => (await journal(d)).find((l) => l.type === 'accepted' && l.roles?.[0] === role)?.event?.id,
        10_000,
        `the event of ${role}`,
      );
    expect((await outcomeOf(d, await idOf('okta_user'))).status).toBe('contained');
    expect((await outcomeOf(d, await idOf('entra_user'))).status).toBe('contained');
    for (const role of ['okta_user', 'entra_user']) {
      expect(await sessionsOf(role)).toBe(0);
      expect(await canLogin(role)).toBe(false);
      const v = await runCli(['verify', role, '--dsn', cl.dsn()]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    }

    // Okta reactivates the user: on_reactivate restore undoes the cutoff from its record
    const reactivate = JSON.stringify({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', value: { active: true } }],
    });
    expect((await scim(s, 'PATCH', `/Users/${oktaId}`, reactivate)).status).toBe(200);
    const back = await waitFor(
      async () => (await journal(d)).find((l) => l.type === 'accepted' && l.event?.key.endsWith(':reactivate'))?.event?.id,
      10_000,
      'the reactivation',
    );
    const restored = await outcomeOf(d, back);
    expect(restored.status, JSON.stringify(restored)).toBe('restored');
    expect(await canLogin('okta_user')).toBe(true);
    expect(await canLogin('entra_user')).toBe(false);
    const line = (await auditLines(d)).find((l) => l.event?.id === back && l.action === 'serve_restore')!;
    expect(line).toMatchObject({ result: 'restored', reason: 'reactivation', target: 'okta_user' });
    expect(await stopServe(s)).toBe(0);
  });

  it('SIGKILL after the 2xx and before the cutoff (held up by a lock on the role): the next start completes it', async () => {
    // the test holds bob's pg_authid row: the cutoff's ALTER ROLE waits on it
    const holder = await cl.connectAs('postgres', cl.password);
    await holder.query('BEGIN');
    await holder.query('ALTER ROLE bob CONNECTION LIMIT 7');
    const s1 = await start(d);
    const r = await postGithub(s1, githubDelivery('organization', memberRemoved('bob-gh')));
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };
    await waitFor(
      async () =>
        (
          await cl.sql(
            `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%ALTER ROLE%bob%' AND pid <> pg_backend_pid()`,
          )
        ).length > 0,
      15_000,
      "the cutoff's ALTER ROLE waiting on the test's lock",
    );
    s1.run.signal('SIGKILL');
    await s1.run.exited;
    await holder.query('ROLLBACK');
    await holder.end();
    // the server may still run the statement the killed service sent (NOLOGIN commits once the lock is free);
    // what the journal owes is the rest of the cutoff, and its outcome
    expect((await journal(d)).some((l) => l.type === 'done' && l.id === id)).toBe(false);

    const s2 = await start(d);
    expect((await outcomeOf(d, id)).status).toBe('contained');
    expect(s2.stderr()).toContain('1 event(s) accepted before a restart and not done: resuming');
    expect(await canLogin('bob')).toBe(false);
    const v = await runCli(['verify', 'bob', '--dsn', cl.dsn()]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(await stopServe(s2)).toBe(0);
  });

  it('offboarding drops the role; a reactivation then cannot undo it: recorded and reported not_restorable', async () => {
    const off = await serveDir(
      baseConfig(
        `targets: [ ${JSON.stringify(cl.dsn())} ]\nplaybook: offboarding\nreassign_to: postgres\non_reactivate: restore\nidentities:\n  - { user: erin@example.com, roles: [erin] }\n`,
      ),
    );
    extra.push(off);
    const s = await start(off);
    const user = { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'erin@example.com', active: true };
    const created = await scim(s, 'POST', '/Users', JSON.stringify(user));
    expect(created.status).toBe(201);
    const uid = ((await created.json()) as { id: string }).id;
    const patch = (active: boolean) =>
      JSON.stringify({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
        Operations: [{ op: 'replace', path: 'active', value: active }],
      });
    expect((await scim(s, 'PATCH', `/Users/${uid}`, patch(false))).status).toBe(200);
    const idOf = (action: string) =>
      waitFor(
        async () => (await journal(off)).find((l) => l.type === 'accepted' && l.event?.key.endsWith(`:${action}`))?.event?.id,
        10_000,
        action,
      );
    expect((await outcomeOf(off, await idOf('deactivate'))).status).toBe('contained');
    expect(await cl.sql(`SELECT 1 FROM pg_roles WHERE rolname = 'erin'`)).toEqual([]);
    expect((await scim(s, 'PATCH', `/Users/${uid}`, patch(true))).status).toBe(200);
    const back = await idOf('reactivate');
    const outcome = await outcomeOf(off, back);
    expect(outcome.status).toBe('not_restorable');
    const line = (await auditLines(off)).find((l) => l.event?.id === back && l.action === 'serve_restore')!;
    expect(line.result).toBe('not_restorable');
    expect(line.detail).toContain('dropped the role: nothing can be undone');
    expect(await stopServe(s)).toBe(0);
  });

  it('--dry-run plans and records every action and changes nothing', async () => {
    const dry = await serveDir(config());
    extra.push(dry);
    const held = reconnecting('carol');
    await waitFor(async () => held.length > 0, 10_000, "carol's session");
    const s = await start(dry, ['--dry-run']);
    expect(s.stderr()).toContain('(dry run: nothing is changed)');
    const r = await postGithub(s, githubDelivery('organization', memberRemoved('carol-gh')));
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };
    const outcome = await outcomeOf(dry, id, 30_000, true);
    expect(outcome.status).toBe('planned');
    expect(outcome.detail).toMatch(/planned \(would run snapshot, contain, settle, hba_reject, .*verify\)/);
    expect(await canLogin('carol')).toBe(true);
    expect(await sessionsOf('carol')).toBeGreaterThan(0);
    expect((await held[0]!.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    const audit = (await auditLines(dry)).filter((l) => l.event?.id === id);
    expect(audit.map((l) => `${l.action}:${l.result}`)).toEqual(['serve_received:accepted', 'serve_mapped:mapped', 'serve_cutoff:planned']);
    // the real journal does not have it: a real delivery of the same event is not a duplicate
    expect(await journal(dry)).toEqual([]);
    expect(await stopServe(s)).toBe(0);
  });
});
