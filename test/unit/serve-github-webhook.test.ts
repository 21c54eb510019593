// The GitHub webhook adapter (src/serve/github/): the signature over the raw body before anything
// else (GitHub's own test vector), then which deliveries are acted on, with GitHub's documented
// payloads (test/fixtures/github/README.md) signed as GitHub signs them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createGithubHandler } from '../../src/serve/github/index.js';
import { teamSlug } from '../../src/serve/github/events.js';
import { signatureValid, signBody } from '../../src/serve/github/signature.js';
import type { AdapterRequest, ServeEventInput } from '../../src/serve/types.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/github/${name}.json`, import.meta.url));

const SECRET = 'test webhook secret';

/** A handler over a recording enqueue; `journal` is what it was handed, in order. */
function setup(opts: { org?: string; teams?: string[]; duplicate?: boolean } = {}) {
  const journal: ServeEventInput[] = [];
  const handler = createGithubHandler({
    secret: SECRET,
    org: opts.org ?? 'octocoders',
    teams: opts.teams ?? [],
    enqueue: async (e) => {
      journal.push(e);
      return { id: `ev-${journal.length}`, duplicate: opts.duplicate ?? false };
    },
  });
  return { handler, journal };
}

function delivery(event: string, body: Buffer | string, headers: Record<string, string | undefined> = {}): AdapterRequest {
  const raw = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return {
    method: 'POST',
    path: '',
    query: new URLSearchParams(),
    headers: {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      'x-hub-signature-256': signBody(SECRET, raw),
      ...headers,
    },
    rawBody: raw,
    baseUrl: 'https://pgrevoke.example.com',
  };
}

describe("GitHub's signature test vector (Validating webhook deliveries)", () => {
  // docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries, "Testing the webhook payload validation"
  const secret = "It's a Secret to Everybody";
  const vector = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

  it('signs "Hello, World!" as GitHub documents, and accepts that signature', () => {
    expect(signBody(secret, 'Hello, World!')).toBe(vector);
    expect(signatureValid(secret, Buffer.from('Hello, World!'), vector)).toBe(true);
  });

  it('refuses the vector for another body, another secret, a changed digit, or a malformed header', () => {
    expect(signatureValid(secret, Buffer.from('Hello, World?'), vector)).toBe(false);
    expect(signatureValid("It's a secret to everybody", Buffer.from('Hello, World!'), vector)).toBe(false);
    expect(signatureValid(secret, Buffer.from('Hello, World!'), vector.replace(/7$/, '8'))).toBe(false);
    for (const bad of [
      undefined,
      '',
      vector.slice('sha256='.length),
      `sha1=${vector.slice(7)}`,
      `${vector}00`,
      [vector, vector],
      `sha256=${'z'.repeat(64)}`,
    ])
      expect(signatureValid(secret, Buffer.from('Hello, World!'), bad), String(bad)).toBe(false);
  });

  it('the handler takes a delivery signed with the vector', async () => {
    const journal: ServeEventInput[] = [];
    const handler = createGithubHandler({
      secret,
      org: 'acme',
      teams: [],
      enqueue: async (e) => (journal.push(e), { id: '1', duplicate: false }),
    });
    const req = delivery('push', 'Hello, World!', { 'x-hub-signature-256': vector });
    // signed, so read: not JSON, which is the next thing said
    expect(await handler(req)).toMatchObject({ status: 400, body: { error: 'the body is not a JSON payload' } });
    expect((await handler({ ...req, headers: { ...req.headers, 'x-hub-signature-256': vector.replace('757', '758') } })).status).toBe(401);
  });
});

describe('createGithubHandler: authentication first', () => {
  it('a missing or wrong signature is 401 and nothing is enqueued, whatever the body says', async () => {
    const { handler, journal } = setup();
    const body = fixture('organization.member_removed');
    for (const sig of [undefined, signBody('another secret', body), signBody(SECRET, Buffer.concat([body, Buffer.from(' ')]))]) {
      const res = await handler(delivery('organization', body, { 'x-hub-signature-256': sig }));
      expect(res.status).toBe(401);
      expect(JSON.stringify(res.body)).not.toContain(SECRET);
    }
    // even without a delivery id or event, and for a GET: the signature is checked before them
    expect(
      (await handler(delivery('organization', body, { 'x-hub-signature-256': undefined, 'x-github-delivery': undefined }))).status,
    ).toBe(401);
    expect((await handler({ ...delivery('ping', '{}'), method: 'GET', headers: {} })).status).toBe(401);
    expect(journal).toEqual([]);
  });

  it('the signature is over the raw bytes: the same JSON re-serialized is refused', async () => {
    const { handler, journal } = setup();
    const body = fixture('organization.member_removed');
    const req = delivery('organization', JSON.stringify(JSON.parse(body.toString())), { 'x-hub-signature-256': signBody(SECRET, body) });
    expect((await handler(req)).status).toBe(401);
    expect(journal).toEqual([]);
  });

  it('an empty secret is refused when the handler is made', () => {
    expect(() => createGithubHandler({ secret: '', org: 'acme', teams: [], enqueue: async () => ({ id: '', duplicate: false }) })).toThrow(
      /secret is empty/,
    );
  });

  it('a signed delivery without X-GitHub-Delivery (or with an odd one) or X-GitHub-Event is 400, nothing enqueued', async () => {
    const { handler, journal } = setup();
    const body = fixture('organization.member_removed');
    for (const headers of [{ 'x-github-delivery': undefined }, { 'x-github-delivery': 'a b' }, { 'x-github-delivery': 'x'.repeat(129) }])
      expect(await handler(delivery('organization', body, headers))).toMatchObject({
        status: 400,
        body: { error: expect.stringMatching(/^X-GitHub-Delivery/) },
      });
    expect(await handler(delivery('organization', body, { 'x-github-event': undefined }))).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/^X-GitHub-Event/) },
    });
    expect(journal).toEqual([]);
  });

  it('signed but not POST is 405; below the mount point is 404', async () => {
    const { handler } = setup();
    expect(await handler({ ...delivery('ping', '{}'), method: 'PUT' })).toMatchObject({ status: 405, headers: { allow: 'POST' } });
    expect((await handler({ ...delivery('ping', '{}'), path: '/other' })).status).toBe(404);
  });
});

describe('createGithubHandler: deliveries', () => {
  it('ping is answered 200, and says when the webhook is not subscribed to the events acted on', async () => {
    const { handler, journal } = setup({ teams: ['github'] });
    expect(await handler(delivery('ping', fixture('ping.with-organization')))).toEqual({ status: 200, body: { ok: true, event: 'ping' } });
    const narrow = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1, hook: { events: ['push'] } });
    expect((await handler(delivery('ping', narrow))).body).toEqual({
      ok: true,
      event: 'ping',
      notes: [
        'this webhook is not subscribed to "organization" events, which pgrevoke acts on',
        'this webhook is not subscribed to "membership" events, which pgrevoke acts on',
      ],
    });
    expect(journal).toEqual([]);
  });

  it('organization member_removed for the org: the login is enqueued under github:<delivery id>, then 202', async () => {
    const { handler, journal } = setup();
    const res = await handler(delivery('organization', fixture('organization.member_removed')));
    expect(res).toEqual({ status: 202, body: { accepted: true, id: 'ev-1', duplicate: false } });
    expect(journal).toEqual([
      {
        provider: 'github',
        key: 'github:72d3162e-cc78-11e3-81ab-4c9367dc0958',
        action: 'deactivate',
        identity: { github: 'Hacktocat' },
        summary: 'organization member_removed: Hacktocat left octocoders',
      },
    ]);
  });

  it('answers only after enqueue resolves (the journal is fsync-ed then), and a failed enqueue rejects', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let answered = false;
    const handler = createGithubHandler({
      secret: SECRET,
      org: 'Octocoders',
      teams: [],
      enqueue: async () => (await gate, { id: 'late', duplicate: false }),
    });
    const pending = handler(delivery('organization', fixture('organization.member_removed'))).then((r) => ((answered = true), r));
    await new Promise((r) => setImmediate(r));
    expect(answered).toBe(false);
    release();
    expect((await pending).status).toBe(202);
    const failing = createGithubHandler({
      secret: SECRET,
      org: 'Octocoders',
      teams: [],
      enqueue: async () => Promise.reject(new Error('ENOSPC')),
    });
    await expect(failing(delivery('organization', fixture('organization.member_removed')))).rejects.toThrow('ENOSPC');
  });

  it('a redelivery passes the same key; the journal saying duplicate is answered 202 with duplicate: true', async () => {
    const { handler, journal } = setup({ duplicate: true });
    const req = delivery('organization', fixture('organization.member_removed'));
    expect((await handler(req)).body).toEqual({ accepted: true, id: 'ev-1', duplicate: true });
    await handler(req);
    expect(journal.map((e) => e.key)).toEqual([
      'github:72d3162e-cc78-11e3-81ab-4c9367dc0958',
      'github:72d3162e-cc78-11e3-81ab-4c9367dc0958',
    ]);
  });

  it('another organization, and other organization actions, are acknowledged (200) and ignored', async () => {
    const { handler, journal } = setup({ org: 'acme' });
    expect(await handler(delivery('organization', fixture('organization.member_removed')))).toEqual({
      status: 200,
      body: { ok: true, ignored: 'organization Octocoders is not acme' },
    });
    const own = setup();
    expect(await own.handler(delivery('organization', fixture('organization.member_added')))).toEqual({
      status: 200,
      body: { ok: true, ignored: 'organization member_added is not acted on' },
    });
    expect((await own.handler(delivery('push', '{"ref":"refs/heads/main"}'))).body).toEqual({ ok: true, ignored: 'push is not acted on' });
    expect([...journal, ...own.journal]).toEqual([]);
  });

  it('membership removed from a listed team (by slug, any case) is enqueued; an unlisted team is ignored', async () => {
    const listed = setup({ teams: ['GitHub'] });
    expect((await listed.handler(delivery('membership', fixture('membership.removed')))).status).toBe(202);
    expect(listed.journal).toMatchObject([
      { identity: { github: 'Codertocat' }, summary: 'membership removed: Codertocat left team octocoders/GitHub' },
    ]);
    const unlisted = setup({ teams: ['db-admins'] });
    expect(await unlisted.handler(delivery('membership', fixture('membership.removed')))).toEqual({
      status: 200,
      body: { ok: true, ignored: 'team github is not in github.teams' },
    });
    const none = setup();
    expect((await none.handler(delivery('membership', fixture('membership.removed')))).status).toBe(200);
    expect([...unlisted.journal, ...none.journal]).toEqual([]);
  });

  it('a deleted team has no slug: its name (or the slug of its name) is matched', async () => {
    const { handler, journal } = setup({ teams: ['github'] });
    expect((await handler(delivery('membership', fixture('membership.removed.with-deleted-team')))).status).toBe(202);
    expect(journal[0]!.summary).toBe('membership removed: Codertocat left team octocoders/github (the team was deleted)');
    expect(teamSlug('DB Admins (EU)')).toBe('db-admins-eu');
  });

  it('membership removed for another organization is ignored even for a listed team', async () => {
    const { handler, journal } = setup({ org: 'acme', teams: ['github'] });
    expect((await handler(delivery('membership', fixture('membership.removed')))).body).toEqual({
      ok: true,
      ignored: 'organization Octocoders is not acme',
    });
    expect(journal).toEqual([]);
  });

  it('a form-encoded delivery (the webhook content type application/x-www-form-urlencoded) is read from its payload field', async () => {
    const { handler, journal } = setup();
    const form = new URLSearchParams({ payload: fixture('organization.member_removed').toString() }).toString();
    expect((await handler(delivery('organization', form, { 'content-type': 'application/x-www-form-urlencoded' }))).status).toBe(202);
    expect(journal).toMatchObject([{ identity: { github: 'Hacktocat' } }]);
  });

  it('a signed payload missing what the event needs is 400, not a guess', async () => {
    const { handler, journal } = setup();
    const removed = JSON.parse(fixture('organization.member_removed').toString());
    const cases: [unknown, RegExp][] = [
      [{ ...removed, membership: { ...removed.membership, user: null } }, /membership\.user\.login is missing/],
      [{ ...removed, membership: { ...removed.membership, user: { login: 'a\nb' } } }, /not a GitHub login/],
      [{ ...removed, organization: undefined }, /organization\.login is missing/],
      [[removed], /not a JSON object/],
    ];
    for (const [payload, error] of cases)
      expect(await handler(delivery('organization', JSON.stringify(payload)))).toMatchObject({
        status: 400,
        body: { error: expect.stringMatching(error) },
      });
    expect(journal).toEqual([]);
  });
});
