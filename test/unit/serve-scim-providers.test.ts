// Okta's and Microsoft Entra ID's documented SCIM requests (test/fixtures/scim, verbatim, sources in
// its README) replayed in the order the providers send them, against createScimHandler with a real
// state directory and a recording enqueue.
import { afterAll, describe, expect, it } from 'vitest';
import { bench, fixture, removeStateDirs, type Send } from './serve-scim-harness.js';

afterAll(removeStateDirs);

interface Step {
  request: string;
  /** false: the documented id stays as it is (a user the server does not have). */
  ours?: boolean;
  body?: string;
  response?: string;
}

const json = async (name: string) => JSON.parse(await fixture(name)) as Record<string, unknown>;

/** The method and target of a documented request line ("PATCH /scim/v2/Users/23a3... HTTP/1.1"), the doc's id made ours. */
function requestLine(line: string, docIds: string[], ourId: string | null): [string, string] {
  const [method, ...rest] = line.replace(/ HTTP\/1\.1$/, '').split(' ');
  let target = rest.join(' ');
  if (ourId) for (const doc of docIds) target = target.replace(`/Users/${doc}`, `/Users/${ourId}`);
  return [method as string, target];
}

async function replay(send: Send, steps: Step[], docIds: string[], ourIdFrom: number) {
  const out = [];
  let ourId: string | null = null;
  for (const [i, step] of steps.entries()) {
    const [method, target] = requestLine(step.request, docIds, step.ours === false ? null : ourId);
    const res = await send(method, target, step.body ? await fixture(step.body) : undefined);
    if (i === ourIdFrom) ourId = res.json.id as string;
    out.push({ target, res, documented: step.response ? await json(step.response) : null });
  }
  return out;
}

function withoutServerFields(doc: Record<string, unknown>) {
  const { id: _id, meta: _meta, groups: _groups, ...rest } = doc;
  return rest;
}

describe('Okta: SCIM 2.0 reference, create then deactivate', () => {
  it('looks the user up, creates it, reads it, updates it (PUT) and deactivates it (PATCH): one deactivate event', async () => {
    const b = await bench();
    const seq = (await json('okta-sequence.json')) as { steps: Step[] };
    const [lookup, create, list, get, put, deactivate] = await replay(b.send, seq.steps, ['23a35c27-23d3-4c03-b4c5-6443c09e7173'], 1);
    expect(lookup?.target).toBe('/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100');
    expect(lookup?.res.status).toBe(200);
    expect(lookup?.res.json).toEqual(lookup?.documented);
    expect(create?.res.status).toBe(201);
    expect(create?.res.json).toMatchObject(withoutServerFields(create?.documented ?? {}));
    expect(create?.res.json.meta).toMatchObject({ resourceType: 'User' });
    const id = create?.res.json.id as string;
    expect(list?.res.json).toMatchObject({ totalResults: 1, startIndex: 1, itemsPerPage: 1, Resources: [{ id }] });
    expect(get?.res.status).toBe(200);
    expect(get?.res.json).toMatchObject({ id, userName: 'test.user@okta.local', active: true });
    expect(put?.res.status).toBe(200);
    expect(put?.res.json).toMatchObject({ id, name: { givenName: 'Another', middleName: 'Excited', familyName: 'User' }, active: true });
    expect(deactivate?.res.status).toBe(200);
    const { name: _name, ...documented } = withoutServerFields(deactivate?.documented ?? {});
    expect(deactivate?.res.json).toMatchObject({ ...documented, id });
    expect(b.rec.calls).toEqual([
      {
        provider: 'scim',
        action: 'deactivate',
        identity: { user: 'test.user@okta.local' },
        key: `scim:${id}:1:deactivate`,
        summary: `PATCH /Users/${id} active=false`,
      },
    ]);
    // the same user is there after a restart, inactive
    const found = await b.restart()('GET', lookup?.target ?? '');
    expect(found.json).toMatchObject({ totalResults: 1, Resources: [{ id, active: false }] });
  });

  it("passes the required User steps of Okta's SPEC test", async () => {
    const b = await bench();
    const seed = await b.send('POST', '/Users', await fixture('okta-create-user.request.json'));
    expect(seed.status).toBe(201);
    const spec = (await json('okta-spec-test.steps.json')) as {
      steps: { note: string; method: string; url: string; body?: string; status: number }[];
    };
    const vars: Record<string, string> = {
      SCIMBaseURL: '',
      InvalidUserEmail: 'abcdefgh@ijklmnop.qrs',
      UserIdThatDoesNotExist: '010101001010101010101010',
      randomUsername: 'Kiera.Hoeger@example.org',
      randomUsernameCaps: 'KIERA.HOEGER@EXAMPLE.ORG',
      randomEmail: 'Kiera.Hoeger@example.org',
      randomGivenName: 'Kiera',
      randomFamilyName: 'Hoeger',
    };
    const fill = (s: string) => s.replace(/\{\{(\w+)\}\}/g, (_, v: string) => vars[v] ?? `{{${v}}}`);
    for (const step of spec.steps) {
      const res = await b.send(step.method, fill(step.url), step.body === undefined ? undefined : fill(step.body));
      expect({ note: step.note, status: res.status }).toEqual({ note: step.note, status: step.status });
      if (step.note.endsWith('Test Users endpoint')) vars.ISVUserid = (res.json.Resources as { id: string }[])[0]?.id ?? '';
      if (step.note.endsWith('Create Okta user with realistic values')) vars.idUserOne = res.json.id as string;
      if (step.note.endsWith('Username Case Sensitivity Check')) expect(res.json.totalResults).toBe(1);
      if (step.note.endsWith('Test invalid User by ID')) expect(res.json.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
    }
    expect(b.rec.calls).toEqual([]);
  });
});

describe('Microsoft Entra ID: the tutorial’s User Operations', () => {
  it('looks up, creates, finds, updates, disables and deletes the user: one deactivate event', async () => {
    const b = await bench();
    const seq = (await json('entra-sequence.json')) as { steps: Step[] };
    const docIds = ['5d48a0a8e9f04aa38008', '6764549bef60420686bc', '5171a35d82074e068ce2'];
    const out = await replay(b.send, seq.steps, docIds, 1);
    const [zero, create, query, get, notFound, multi, single, disable, del] = out;
    const { itemsPerPage: _ipp, ...zeroDoc } = zero?.documented ?? {};
    expect(zero?.res.json).toMatchObject(zeroDoc);
    expect(create?.res.status).toBe(201);
    const id = create?.res.json.id as string;
    // the tutorial's examples are each of their own user: the query's answer is compared on what the create sent
    const doc = (query?.documented?.Resources as Record<string, unknown>[])[0] ?? {};
    expect(query?.res.json).toMatchObject({ schemas: query?.documented?.schemas, totalResults: 1, startIndex: 1 });
    expect((query?.res.json.Resources as unknown[])[0]).toMatchObject({
      id,
      userName: doc.userName,
      name: doc.name,
      active: true,
      emails: doc.emails,
    });
    expect(get?.res.status).toBe(200);
    expect(notFound?.res.status).toBe(404);
    expect(notFound?.res.json).toMatchObject({ schemas: notFound?.documented?.schemas, status: notFound?.documented?.status });
    expect(multi?.res.json).toMatchObject({
      emails: [{ value: 'updatedEmail@microsoft.com', type: 'work', primary: true }],
      name: { familyName: 'updatedFamilyName' },
    });
    expect(single?.res.json.userName).toBe('5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com');
    expect(disable?.res.status).toBe(200);
    expect(disable?.res.json.active).toBe(false);
    expect(del?.res.status).toBe(204);
    expect(b.rec.calls).toEqual([
      {
        provider: 'scim',
        action: 'deactivate',
        identity: { user: '5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com' },
        key: `scim:${id}:1:deactivate`,
        summary: `PATCH /Users/${id} active=false`,
      },
    ]);
  });

  it('the 404 of an unknown id has the tutorial’s shape', async () => {
    const b = await bench();
    const doc = await json('entra-get-user-not-found.response.json');
    const res = await b.send('GET', '/Users/5171a35d82074e068ce2');
    expect(res.status).toBe(404);
    expect(Object.keys(res.json).sort()).toEqual(Object.keys(doc).sort());
    expect(res.json).toMatchObject({ schemas: doc.schemas, status: doc.status });
  });
});

describe('Microsoft Entra ID: with and without aadOptscim062020', () => {
  async function entraUser() {
    const b = await bench();
    const res = await b.send('POST', '/Users', await fixture('entra-create-user.request.json'));
    expect(res.status).toBe(201);
    return { b, id: res.json.id as string };
  }

  for (const file of [
    'entra-compat-disable-user.without-flag.request.json',
    'entra-compat-disable-user.with-flag.request.json',
    'entra-disable-user.request.json',
  ])
    it(`${file} deactivates: one event`, async () => {
      const { b, id } = await entraUser();
      const res = await b.send('PATCH', `/Users/${id}`, await fixture(file));
      expect(res.status).toBe(200);
      expect(res.json.active).toBe(false);
      expect(b.rec.calls).toMatchObject([
        { action: 'deactivate', identity: { user: 'Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee' }, key: `scim:${id}:1:deactivate` },
      ]);
    });

  it('adds a single-value attribute (Add, without the flag)', async () => {
    const { b, id } = await entraUser();
    const res = await b.send('PATCH', `/Users/${id}`, await fixture('entra-compat-add-single-value.without-flag.request.json'));
    expect(res.json.nickName).toBe('Babs');
    expect(b.rec.calls).toEqual([]);
  });

  it('replaces several attributes, by paths (without the flag) and by one no-path value (with it)', async () => {
    const { b, id } = await entraUser();
    const ext = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
    const without = await b.send('PATCH', `/Users/${id}`, await fixture('entra-compat-replace-multiple.without-flag.request.json'));
    expect(without.json).toMatchObject({
      displayName: 'Pvlo',
      externalId: 'Eqpj',
      name: { givenName: 'Gtfd', familyName: 'Pkqf' },
      emails: [{ type: 'work', value: 'TestBcwqnm@test.microsoft.com' }],
      [ext]: { employeeNumber: 'Eqpj' },
    });
    const withFlag = await b.send('PATCH', `/Users/${id}`, await fixture('entra-compat-replace-multiple.with-flag.request.json'));
    expect(withFlag.json).toMatchObject({
      displayName: 'Bjfe',
      name: { givenName: 'Kkom', familyName: 'Unua' },
      emails: [{ type: 'work', value: 'TestMhvaes@test.microsoft.com' }],
      [ext]: { employeeNumber: 'Aklq' },
    });
    expect(b.rec.calls).toEqual([]);
  });

  it('provisions Example 2’s user (its nulls are unassigned attributes) and finds it by externalId', async () => {
    const b = await bench();
    const res = await b.send('POST', '/Users', await fixture('entra-provision-user.request.json'));
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ userName: 'jyoung@testuser.com', externalId: 'jyoung', displayName: 'Joy Young', active: true });
    expect(res.json).not.toHaveProperty('phoneNumbers');
    const found = await b.send('GET', '/Users?filter=' + encodeURIComponent('externalId eq "jyoung"'));
    expect(found.json).toMatchObject({ totalResults: 1, Resources: [{ id: res.json.id }] });
  });

  it('DELETE of an active user (Deprovision a user, Example 6) deactivates it', async () => {
    const { b, id } = await entraUser();
    expect((await b.send('DELETE', `/Users/${id}`)).status).toBe(204);
    expect(b.rec.calls).toMatchObject([{ action: 'deactivate', key: `scim:${id}:1:deactivate`, summary: `DELETE /Users/${id}` }]);
  });
});
