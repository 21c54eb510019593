// /Users over createScimHandler with a real state directory: every endpoint, the error schema,
// filters and their errors, paging, uniqueness.
import { afterAll, describe, expect, it } from 'vitest';
import { BASE, bench, patch, removeStateDirs, user } from './serve-scim-harness.js';

afterAll(removeStateDirs);

const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';

function expectError(res: { status: number; json: Record<string, unknown>; contentType?: string }, status: number, scimType?: string) {
  expect(res.status).toBe(status);
  expect(res.contentType).toBe('application/scim+json');
  expect(res.json.schemas).toEqual([ERROR]);
  expect(res.json.status).toBe(String(status));
  if (scimType) expect(res.json.scimType).toBe(scimType);
  else expect(res.json).not.toHaveProperty('scimType');
  expect(typeof res.json.detail).toBe('string');
}

describe('POST and GET /Users', () => {
  it('creates a user (201, Location, meta) and gets it by id; no event is enqueued', async () => {
    const b = await bench();
    const res = await b.send('POST', '/Users', user('alice@example.com', { externalId: 'ext-1', password: 'secret-pw' }));
    expect(res.status).toBe(201);
    expect(res.contentType).toBe('application/scim+json');
    const id = res.json.id as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const meta = res.json.meta as Record<string, string>;
    expect(meta.resourceType).toBe('User');
    expect(meta.location).toBe(`${BASE}/Users/${id}`);
    expect(meta.version).toBe('W/"1"');
    expect(res.headers?.location).toBe(meta.location);
    expect(res.json).not.toHaveProperty('password');
    const got = await b.send('GET', `/Users/${id}`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ id, userName: 'alice@example.com', externalId: 'ext-1', active: true });
    expect(b.rec.calls).toEqual([]);
  });

  it('answers 404 in the error schema for an unknown id', async () => {
    const b = await bench();
    expectError(await b.send('GET', '/Users/nope'), 404);
  });

  it('refuses a second user with the same userName in any case: 409 uniqueness', async () => {
    const b = await bench();
    expect((await b.send('POST', '/Users', user('bob@example.com'))).status).toBe(201);
    expectError(await b.send('POST', '/Users', user('BOB@example.com')), 409, 'uniqueness');
  });

  it('refuses bodies that are not JSON or not a User: invalidSyntax, invalidValue', async () => {
    const b = await bench();
    expectError(await b.send('POST', '/Users', '{"userName":'), 400, 'invalidSyntax');
    expectError(await b.send('POST', '/Users', '[1,2]'), 400, 'invalidSyntax');
    expectError(await b.send('POST', '/Users', ''), 400, 'invalidSyntax');
    expectError(await b.send('POST', '/Users', { active: true }), 400, 'invalidValue');
    expectError(await b.send('POST', '/Users', user('c@example.com', { active: 'yes' })), 400, 'invalidValue');
    expectError(await b.send('POST', '/Users', user('c@example.com', { emails: 'c@example.com' })), 400, 'invalidValue');
  });

  it('answers attributes and excludedAttributes projections', async () => {
    const b = await bench();
    const id = (await b.send('POST', '/Users', user('dora@example.com', { displayName: 'Dora' }))).json.id as string;
    const only = await b.send('GET', `/Users/${id}?attributes=userName`);
    expect(only.json.userName).toBe('dora@example.com');
    expect(only.json).toHaveProperty('id');
    expect(only.json).not.toHaveProperty('displayName');
    const without = await b.send('GET', `/Users/${id}?excludedAttributes=emails`);
    expect(without.json.displayName).toBe('Dora');
    expect(without.json).not.toHaveProperty('emails');
  });
});

describe('GET /Users: filters and paging', () => {
  async function fiveUsers() {
    const b = await bench();
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++)
      ids.push((await b.send('POST', '/Users', user(`u${i}@example.com`, { externalId: `x${i}` }))).json.id as string);
    return { b, ids };
  }

  it('filters on userName eq (without case) and externalId eq (with case)', async () => {
    const { b, ids } = await fiveUsers();
    const byName = await b.send('GET', '/Users?filter=' + encodeURIComponent('userName eq "U3@Example.COM"'));
    expect(byName.status).toBe(200);
    expect(byName.json).toMatchObject({ schemas: [LIST], totalResults: 1, startIndex: 1, itemsPerPage: 1 });
    expect((byName.json.Resources as { id: string }[]).map((r) => r.id)).toEqual([ids[2]]);
    const byExt = await b.send('GET', '/Users?filter=' + encodeURIComponent('externalId eq "x4"'));
    expect((byExt.json.Resources as { id: string }[]).map((r) => r.id)).toEqual([ids[3]]);
    const wrongCase = await b.send('GET', '/Users?filter=' + encodeURIComponent('externalId eq "X4"'));
    expect(wrongCase.json).toMatchObject({ totalResults: 0, itemsPerPage: 0, Resources: [] });
    const both = await b.send('GET', '/Users?filter=' + encodeURIComponent('userName eq "u4@example.com" and externalId eq "x4"'));
    expect(both.json.totalResults).toBe(1);
    const none = await b.send('GET', '/Users?filter=' + encodeURIComponent('userName eq "nobody@example.com"'));
    expect(none.json).toMatchObject({ schemas: [LIST], totalResults: 0, Resources: [] });
  });

  it('pages with startIndex and count in creation order, totalResults the whole match', async () => {
    const { b, ids } = await fiveUsers();
    const page = async (q: string) => {
      const r = await b.send('GET', `/Users?${q}`);
      return { ...r.json, ids: (r.json.Resources as { id: string }[]).map((x) => x.id) };
    };
    expect(await page('startIndex=1&count=2')).toMatchObject({ totalResults: 5, startIndex: 1, itemsPerPage: 2, ids: ids.slice(0, 2) });
    expect(await page('startIndex=3&count=2')).toMatchObject({ totalResults: 5, startIndex: 3, itemsPerPage: 2, ids: ids.slice(2, 4) });
    expect(await page('startIndex=5&count=2')).toMatchObject({ totalResults: 5, itemsPerPage: 1, ids: ids.slice(4) });
    expect(await page('startIndex=9&count=2')).toMatchObject({ totalResults: 5, itemsPerPage: 0, ids: [] });
    // RFC 7644 3.4.2.4: below 1 is 1, a negative count is 0
    expect(await page('startIndex=0&count=1')).toMatchObject({ startIndex: 1, ids: ids.slice(0, 1) });
    expect(await page('count=-3')).toMatchObject({ totalResults: 5, itemsPerPage: 0, ids: [] });
    expect(await page('count=0')).toMatchObject({ totalResults: 5, itemsPerPage: 0 });
    expect(await page('')).toMatchObject({ totalResults: 5, itemsPerPage: 5, ids });
  });

  it('refuses a paging parameter that is not an integer: invalidValue', async () => {
    const { b } = await fiveUsers();
    expectError(await b.send('GET', '/Users?startIndex=abc'), 400, 'invalidValue');
    expectError(await b.send('GET', '/Users?count=1.5'), 400, 'invalidValue');
  });

  it('refuses filters that do not parse or compare with nothing: invalidFilter', async () => {
    const { b } = await fiveUsers();
    for (const f of ['userName eq', 'userName zz "x"', '(userName eq "a"', 'userName eq "a" and', '', '   '])
      expectError(await b.send('GET', '/Users?filter=' + encodeURIComponent(f)), 400, 'invalidFilter');
  });
});

describe('PUT, PATCH and DELETE /Users/{id}', () => {
  it('PUT replaces the user (version bumped), PATCH changes attributes, DELETE removes it (204, then 404)', async () => {
    const b = await bench();
    const id = (await b.send('POST', '/Users', user('erin@example.com', { displayName: 'Erin', nickName: 'E' }))).json.id as string;
    const put = await b.send('PUT', `/Users/${id}`, user('erin@example.com', { displayName: 'Erin Two' }));
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ id, displayName: 'Erin Two', active: true });
    expect(put.json).not.toHaveProperty('nickName');
    expect((put.json.meta as { version: string }).version).toBe('W/"2"');
    const pat = await b.send(
      'PATCH',
      `/Users/${id}`,
      patch({ op: 'add', path: 'title', value: 'Engineer' }, { op: 'remove', path: 'displayName' }),
    );
    expect(pat.status).toBe(200);
    expect(pat.json).toMatchObject({ title: 'Engineer' });
    expect(pat.json).not.toHaveProperty('displayName');
    const del = await b.send('DELETE', `/Users/${id}`);
    expect(del.status).toBe(204);
    expect(del.body).toBeUndefined();
    expectError(await b.send('GET', `/Users/${id}`), 404);
    expectError(await b.send('DELETE', `/Users/${id}`), 404);
    expectError(await b.send('PUT', `/Users/${id}`, user('erin@example.com')), 404);
    expectError(await b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'title', value: 'x' })), 404);
  });

  it('a PUT or PATCH onto another user’s userName is 409 uniqueness and changes nothing', async () => {
    const b = await bench();
    await b.send('POST', '/Users', user('fay@example.com'));
    const id = (await b.send('POST', '/Users', user('gus@example.com'))).json.id as string;
    expectError(await b.send('PUT', `/Users/${id}`, user('FAY@example.com')), 409, 'uniqueness');
    expectError(
      await b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'userName', value: 'fay@example.com' })),
      409,
      'uniqueness',
    );
    expect((await b.send('GET', `/Users/${id}`)).json.userName).toBe('gus@example.com');
  });

  it('refuses PATCH bodies that are not a PatchOp, and operations SCIMMY refuses', async () => {
    const b = await bench();
    const id = (await b.send('POST', '/Users', user('hal@example.com'))).json.id as string;
    expectError(
      await b.send('PATCH', `/Users/${id}`, { Operations: [{ op: 'replace', path: 'title', value: 'x' }] }),
      400,
      'invalidSyntax',
    );
    expectError(await b.send('PATCH', `/Users/${id}`, patch()), 400, 'invalidSyntax');
    expectError(await b.send('PATCH', `/Users/${id}`, patch({ op: 'frobnicate', path: 'title', value: 'x' })), 400, 'invalidSyntax');
    expectError(await b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'active', value: 'maybe' })), 400, 'invalidValue');
    expectError(await b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'noSuchAttribute', value: 'x' })), 400, 'invalidPath');
    expect((await b.send('GET', `/Users/${id}`)).json).toMatchObject({ active: true, meta: { version: 'W/"1"' } });
    expect(b.rec.calls).toEqual([]);
  });

  it('answers 405 for a method an endpoint does not serve, and 404 below nothing served', async () => {
    const b = await bench();
    const r = await b.send('DELETE', '/Users');
    expectError(r, 405);
    expect(r.headers?.allow).toBe('GET, POST');
    expectError(await b.send('POST', '/Users/x'), 405);
    expectError(await b.send('GET', '/Groups'), 404);
    expectError(await b.send('GET', ''), 404);
    expectError(await b.send('GET', '/Users/x/y'), 404);
  });
});
