// Red team (issue 17): a PATCH that unassigns `active` (remove, or replace with null: RFC 7643
// 2.5 has null as unassigned) on a deactivated user made it active again, as an absent active is
// active, so the core got a reactivation and on_reactivate: restore undid the cutoff, though the
// provider never said active: true. A PUT that leaves active out already keeps it; a PATCH does now.
import { afterAll, describe, expect, it } from 'vitest';
import { bench, patch, removeStateDirs, user } from './serve-scim-harness.js';

afterAll(removeStateDirs);

describe('SCIM: only active true reactivates', () => {
  for (const [name, op] of [
    ['remove active', { op: 'remove', path: 'active' }],
    ['replace active with null', { op: 'replace', path: 'active', value: null }],
    ['Entra Replace active null', { op: 'Replace', path: 'active', value: null }],
    ['a no-path replace with active null', { op: 'replace', value: { active: null, displayName: 'D' } }],
  ] as const)
    it(`${name} on a deactivated user: still inactive, no reactivation`, async () => {
      const { send, rec } = await bench();
      const id = (await send('POST', '/Users', user('alice@example.com'))).json.id as string;
      expect((await send('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'active', value: false }))).status).toBe(200);
      const r = await send('PATCH', `/Users/${id}`, patch(op));
      expect(r.status).toBe(200);
      expect(r.json.active).toBe(false);
      expect((await send('GET', `/Users/${id}`)).json.active).toBe(false);
      expect(rec.events.map((e) => e.action)).toEqual(['deactivate']);
      // and an explicit true still reactivates
      await send('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'active', value: true }));
      expect(rec.events.map((e) => e.action)).toEqual(['deactivate', 'reactivate']);
    });
});
