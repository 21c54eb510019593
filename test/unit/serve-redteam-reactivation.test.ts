// Red team (issue 17): a reactivation is the undoing of this service's own deactivation. A user
// the provider created inactive (an import of people already gone, a staged account) and then
// activated was sent to the core as a reactivation, and on_reactivate: restore undid the latest
// cutoff of the mapped roles that no restore had used: whoever made it, such as the incident
// responder's `pgrevoke cutoff` of a compromised role. Only a user this adapter deactivated is
// reactivated; any other activation only updates the stored user.
import { afterAll, describe, expect, it } from 'vitest';
import { bench, patch, removeStateDirs, user } from './serve-scim-harness.js';

afterAll(removeStateDirs);

const activate = patch({ op: 'replace', value: { active: true } });
const deactivate = patch({ op: 'replace', value: { active: false } });

describe('SCIM: activating a user this service never deactivated is no reactivation', () => {
  it('created inactive, then activated by PATCH or PUT: nothing enqueued, the user stored active', async () => {
    const { send, rec } = await bench();
    const a = await send('POST', '/Users', user('alice@example.com', { active: false }));
    expect(a.status).toBe(201);
    const on = await send('PATCH', `/Users/${a.json.id as string}`, activate);
    expect(on.status).toBe(200);
    expect(on.json.active).toBe(true);
    const b = await send('POST', '/Users', user('bob@example.com', { active: false }));
    const put = await send('PUT', `/Users/${b.json.id as string}`, user('bob@example.com', { active: true }));
    expect(put.status).toBe(200);
    expect(rec.calls).toEqual([]);
  });

  it('then deactivated and reactivated: both are events, with keys of their own', async () => {
    const { send, rec } = await bench();
    const a = await send('POST', '/Users', user('alice@example.com', { active: false }));
    const id = a.json.id as string;
    await send('PATCH', `/Users/${id}`, activate);
    await send('PATCH', `/Users/${id}`, deactivate);
    await send('PATCH', `/Users/${id}`, activate);
    expect(rec.events.map((e) => `${e.action} ${e.key}`)).toEqual([
      `deactivate scim:${id}:1:deactivate`,
      `reactivate scim:${id}:2:reactivate`,
    ]);
  });
});
