// The discovery endpoints (RFC 7644 4) over createScimHandler.
import { afterAll, describe, expect, it } from 'vitest';
import { BASE, bench, removeStateDirs } from './serve-scim-harness.js';

afterAll(removeStateDirs);

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

describe('discovery', () => {
  it('ServiceProviderConfig: PATCH and filter supported, bulk, sort, etag and password change not, bearer token', async () => {
    const b = await bench();
    const res = await b.send('GET', '/ServiceProviderConfig');
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('application/scim+json');
    expect(res.json).toMatchObject({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
      patch: { supported: true },
      filter: { supported: true, maxResults: 200 },
      bulk: { supported: false },
      sort: { supported: false },
      etag: { supported: false },
      changePassword: { supported: false },
      authenticationSchemes: [{ type: 'oauthbearertoken' }],
      meta: { resourceType: 'ServiceProviderConfig', location: `${BASE}/ServiceProviderConfig` },
    });
  });

  it('ResourceTypes: User with the enterprise extension, listed and by id', async () => {
    const b = await bench();
    const list = await b.send('GET', '/ResourceTypes');
    expect(list.json).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 1, itemsPerPage: 1 });
    const one = await b.send('GET', '/ResourceTypes/User');
    expect(one.json).toMatchObject({
      id: 'User',
      endpoint: '/Users',
      schema: USER,
      schemaExtensions: [{ schema: ENTERPRISE, required: false }],
      meta: { location: `${BASE}/ResourceTypes/User` },
    });
    expect((list.json.Resources as unknown[])[0]).toEqual(one.json);
    expect((await b.send('GET', '/ResourceTypes/Group')).status).toBe(404);
  });

  it('Schemas: User (userName required, unique, not case exact) and EnterpriseUser, listed and by id', async () => {
    const b = await bench();
    const list = await b.send('GET', '/Schemas');
    expect((list.json.Resources as { id: string }[]).map((s) => s.id).sort()).toEqual([USER, ENTERPRISE].sort());
    const user = await b.send('GET', `/Schemas/${USER}`);
    expect(user.json.meta).toMatchObject({ location: `${BASE}/Schemas/${USER}` });
    const userName = (user.json.attributes as { name: string }[]).find((a) => a.name === 'userName');
    expect(userName).toMatchObject({ required: true, caseExact: false, uniqueness: 'server' });
    expect((await b.send('GET', '/Schemas/urn:example:nothing')).status).toBe(404);
  });

  it('discovery is read-only: 405', async () => {
    const b = await bench();
    const res = await b.send('POST', '/Schemas', {});
    expect(res.status).toBe(405);
    expect(res.headers?.allow).toBe('GET');
  });
});
