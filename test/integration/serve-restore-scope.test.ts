// Red team (issue 17), core: a reactivation undoes more than the identity's own deactivation.
// An incident responder cuts alice off because her credential leaked (`pgrevoke cutoff alice`,
// compromise). Later the identity provider suspends and unsuspends her (HR, a routine review):
// the SCIM deactivation finds alice contained already (a rerun, whose before-state comes from the
// responder's record), and the reactivation, with on_reactivate: restore, restores the latest
// unrestored record of the role: the rerun, whose before-state is the one before the responder's
// cutoff. alice logs in again with the leaked credential, and nobody asked for that.
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { loginOutcome, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';
import {
  acceptedEventId,
  activePatch,
  baseConfig,
  journal,
  outcomeOf,
  scimRequest,
  type ServeDir,
  serveDir,
  type Service,
  startServe,
  stopServe,
} from './serve-harness.js';

const PW = 'pw';

describe.each(MAJORS)('serve reactivation scope, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let d: ServeDir;
  let s: Service | undefined;

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE bob LOGIN PASSWORD '${PW}'`);
    d = await serveDir(
      baseConfig(
        `targets: [ ${JSON.stringify(cl.dsn())} ]\non_reactivate: restore\nidentities:\n  - { user: alice@example.com, roles: [alice] }\n  - { user: bob@example.com, roles: [bob] }\n`,
      ),
    );
  });

  afterAll(async () => {
    if (s) {
      s.run.signal('SIGKILL');
      await s.run.exited;
    }
    await cl?.destroyAll();
    if (d) await fs.rm(d.dir, { recursive: true, force: true });
  });

  const scim = (method: string, p: string, body?: unknown) => scimRequest(s!, method, p, body);
  const active = (value: boolean) => activePatch(value);
  const idOf = (action: string) => acceptedEventId(d, action);

  it("an IdP suspend and unsuspend does not undo a responder's cutoff made before it", async () => {
    const cut = await runCli(['cutoff', 'alice', '--dsn', cl.dsn(), '--yes', '--reason', 'compromise'], { PGREVOKE_STATE_DIR: d.state });
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    expect(await loginOutcome(cl, { user: 'alice', password: PW })).not.toBe('allow');

    s = await startServe(d);
    const created = await scim('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'alice@example.com',
      active: true,
    });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as { id: string }).id;
    expect((await scim('PATCH', `/Users/${id}`, active(false))).status).toBe(200);
    expect((await outcomeOf(d, await idOf('deactivate'))).status).toBe('contained');
    expect((await scim('PATCH', `/Users/${id}`, active(true))).status).toBe(200);
    const outcome = await outcomeOf(d, await idOf('reactivate'));
    // the responder's cutoff stands: the reactivation has nothing of its own deactivation to undo
    expect(await loginOutcome(cl, { user: 'alice', password: PW }), JSON.stringify(outcome)).not.toBe('allow');
    expect(await stopServe(s)).toBe(0);
    s = undefined;
  });

  it('a deactivation that cut nothing (unmapped then; the rule added by SIGHUP) is followed by a reactivation that must not restore the responder cutoff', async () => {
    const cut = await runCli(['cutoff', 'bob', '--dsn', cl.dsn(), '--yes', '--reason', 'compromise'], { PGREVOKE_STATE_DIR: d.state });
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    expect(await loginOutcome(cl, { user: 'bob', password: PW })).not.toBe('allow');
    const withRule = await fs.readFile(d.config, 'utf8');
    await fs.writeFile(d.config, withRule.replace('  - { user: bob@example.com, roles: [bob] }\n', ''));
    s = await startServe(d);
    const created = await scim('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'bob@example.com',
      active: true,
    });
    const id = ((await created.json()) as { id: string }).id;
    expect((await scim('PATCH', `/Users/${id}`, active(false))).status).toBe(200);
    const off = await waitFor(
      async () => (await journal(d)).find((l) => l.type === 'accepted' && l.event?.key === `scim:${id}:1:deactivate`)?.event?.id,
      10_000,
      'the deactivation',
    );
    expect((await outcomeOf(d, off)).status).toBe('unmapped');
    // the admin sees the flag and adds the rule
    await fs.writeFile(d.config, withRule);
    s.run.signal('SIGHUP');
    await waitFor(async () => s!.stderr().includes('reloaded'), 10_000, 'the reload');
    expect((await scim('PATCH', `/Users/${id}`, active(true))).status).toBe(200);
    const on = await waitFor(
      async () => (await journal(d)).find((l) => l.type === 'accepted' && l.event?.key === `scim:${id}:2:reactivate`)?.event?.id,
      10_000,
      'the reactivation',
    );
    const outcome = await outcomeOf(d, on);
    // nothing of this identity's deactivation to undo: the responder's cutoff of bob stands
    expect(await loginOutcome(cl, { user: 'bob', password: PW }), JSON.stringify(outcome)).not.toBe('allow');
    expect(outcome.status).toBe('nothing_to_restore');
    expect(await stopServe(s)).toBe(0);
    s = undefined;
  });
});
