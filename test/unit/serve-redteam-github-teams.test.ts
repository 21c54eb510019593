// Red team (issue 17): which team a GitHub membership event is about. A live team was matched by
// its slug, its name or its name's slug, so a team that any organization member may create (by
// default members create teams and maintain them, adding other members) named "DB.Admins" or
// "db-admins", whose slug GitHub makes something else (db-admins-1), passed for the listed
// db-admins: removing a colleague from it cut the colleague's roles off. A live team is its slug
// (what github.teams lists, and what GitHub sends); only a deleted team, which has no slug left,
// is matched by its name.
import { describe, expect, it } from 'vitest';
import { createGithubHandler } from '../../src/serve/github/index.js';
import { signBody } from '../../src/serve/github/signature.js';
import type { Enqueue, ServeEventInput } from '../../src/serve/types.js';

const SECRET = 'webhook secret';

function setup() {
  const events: ServeEventInput[] = [];
  const enqueue: Enqueue = async (e) => (events.push(e), { id: String(events.length), duplicate: false });
  const handler = createGithubHandler({ secret: SECRET, org: 'acme', teams: ['db-admins'], enqueue });
  const send = (team: Record<string, unknown>) => {
    const body = Buffer.from(
      JSON.stringify({ action: 'removed', scope: 'team', member: { login: 'victim' }, team, organization: { login: 'acme' } }),
    );
    return handler({
      method: 'POST',
      path: '',
      query: new URLSearchParams(),
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'membership',
        'x-github-delivery': `d-${Math.random()}`,
        'x-hub-signature-256': signBody(SECRET, body),
      },
      rawBody: body,
      baseUrl: 'http://x/github',
    });
  };
  return { events, send };
}

describe('GitHub membership removed: a live team is its slug', () => {
  it('a team whose name (or its name slugged) is a listed slug, with a slug of its own, is ignored', async () => {
    const { events, send } = setup();
    for (const team of [
      { id: 9, name: 'DB.Admins', slug: 'db-admins-1' },
      { id: 9, name: 'db-admins', slug: 'db-admins-2' },
      { id: 9, name: 'DB Admins', slug: 'db-admins-team' },
    ])
      expect((await send(team)).status, JSON.stringify(team)).toBe(200);
    expect(events).toEqual([]);
  });

  it('the listed team by its slug, and a deleted team by its name, are still acted on', async () => {
    const { events, send } = setup();
    expect((await send({ id: 1, name: 'Database Admins', slug: 'db-admins' })).status).toBe(202);
    expect((await send({ id: 1, name: 'DB Admins', deleted: true })).status).toBe(202);
    expect(events.map((e) => e.identity)).toEqual([{ github: 'victim' }, { github: 'victim' }]);
  });
});
