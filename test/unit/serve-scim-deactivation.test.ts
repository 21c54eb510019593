// Deactivation and reactivation over createScimHandler with a real state directory and a recording
// enqueue: each form real providers send, the redelivery key, retries, the order of enqueue and
// store, restarts, dry runs, and a store that cannot be read.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkScimStore, createScimHandler, DRY_RUN_USERS_FILE, USERS_FILE } from '../../src/serve/scim/index.js';
import type { Enqueue, ServeEventInput } from '../../src/serve/types.js';
import { bench, client, patch, recorder, removeStateDirs, tempStateDir, user } from './serve-scim-harness.js';

afterAll(removeStateDirs);

async function created(b: Awaited<ReturnType<typeof bench>>, userName = 'ann@example.com', extra: Record<string, unknown> = {}) {
  const res = await b.send('POST', '/Users', user(userName, extra));
  expect(res.status).toBe(201);
  return res.json.id as string;
}

const deactivation = (id: string, n: number, summary: string, userName = 'ann@example.com'): ServeEventInput => ({
  provider: 'scim',
  action: 'deactivate',
  identity: { user: userName },
  key: `scim:${id}:${n}:deactivate`,
  summary,
});

describe('each deactivation form enqueues one deactivate event', () => {
  const forms: [string, (id: string) => [string, string, unknown]][] = [
    ['Okta: replace with no path', (id) => ['PATCH', `/Users/${id}`, patch({ op: 'replace', value: { active: false } })]],
    ['Entra: Replace, path active, false', (id) => ['PATCH', `/Users/${id}`, patch({ op: 'Replace', path: 'active', value: false })]],
    [
      'Entra without aadOptscim062020: "False"',
      (id) => ['PATCH', `/Users/${id}`, patch({ op: 'Replace', path: 'active', value: 'False' })],
    ],
    ['PUT with active false', (id) => ['PUT', `/Users/${id}`, user('ann@example.com', { active: false })]],
  ];
  for (const [name, form] of forms)
    it(name, async () => {
      const b = await bench();
      const id = await created(b);
      const [method, target, body] = form(id);
      const res = await b.send(method, target, body);
      expect(res.status).toBe(200);
      expect(res.json.active).toBe(false);
      expect(b.rec.calls).toEqual([deactivation(id, 1, `${method} /Users/${id} active=false`)]);
      expect((await b.send('GET', `/Users/${id}`)).json.active).toBe(false);
    });

  it('DELETE of an active user; DELETE of an inactive one enqueues nothing', async () => {
    const b = await bench();
    const id = await created(b);
    expect((await b.send('DELETE', `/Users/${id}`)).status).toBe(204);
    expect(b.rec.calls).toEqual([deactivation(id, 1, `DELETE /Users/${id}`)]);
    const other = await created(b, 'ben@example.com', { active: false });
    expect((await b.send('DELETE', `/Users/${other}`)).status).toBe(204);
    expect(b.rec.calls).toHaveLength(1);
  });

  it('the identity is the userName before the change, when one request renames and deactivates', async () => {
    const b = await bench();
    const id = await created(b);
    await b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', value: { userName: 'ann.new@example.com', active: false } }));
    expect(b.rec.calls.map((e) => e.identity)).toEqual([{ user: 'ann@example.com' }]);
    expect((await b.send('GET', `/Users/${id}`)).json.userName).toBe('ann.new@example.com');
  });

  it('changes that do not flip active enqueue nothing', async () => {
    const b = await bench();
    const id = await created(b);
    await b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'title', value: 'Boss' }));
    await b.send('PUT', `/Users/${id}`, user('ann@example.com', { title: 'Boss' }));
    await b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'active', value: true }));
    expect(b.rec.calls).toEqual([]);
  });
});

describe('reactivation and the redelivery key', () => {
  it('inactive -> active enqueues reactivate; each later real transition has a new key', async () => {
    const b = await bench();
    const id = await created(b);
    await b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', value: { active: false } }));
    await b.send('PATCH', `/Users/${id}`, patch({ op: 'Replace', path: 'active', value: 'True' }));
    await b.send('PUT', `/Users/${id}`, user('ann@example.com', { active: false }));
    expect(b.rec.calls.map((e) => [e.action, e.key])).toEqual([
      ['deactivate', `scim:${id}:1:deactivate`],
      ['reactivate', `scim:${id}:2:reactivate`],
      ['deactivate', `scim:${id}:3:deactivate`],
    ]);
    expect(b.rec.calls[1]).toMatchObject({
      provider: 'scim',
      identity: { user: 'ann@example.com' },
      summary: `PATCH /Users/${id} active=true`,
    });
  });

  it('a retry of a deactivation already stored answers 200 and enqueues nothing', async () => {
    const b = await bench();
    const id = await created(b);
    const body = patch({ op: 'replace', value: { active: false } });
    const first = await b.send('PATCH', `/Users/${id}`, body);
    const again = await b.send('PATCH', `/Users/${id}`, body);
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(b.rec.calls).toHaveLength(1);
  });

  it('a retry after the journal took the event but the user was not stored derives the same key: one event', async () => {
    const dir = await tempStateDir();
    const rec = recorder();
    let crash = true;
    // the journal has the event, then the process dies before the user is stored
    const crashing: Enqueue = async (e) => {
      const out = await rec.enqueue(e);
      if (crash) throw new Error('killed after the journal fsync');
      return out;
    };
    const send = client(createScimHandler({ storeDir: dir, enqueue: crashing, dryRun: false }));
    const id = (await send('POST', '/Users', user('ann@example.com'))).json.id as string;
    const body = patch({ op: 'replace', value: { active: false } });
    await expect(send('PATCH', `/Users/${id}`, body)).rejects.toThrow('killed after the journal fsync');
    expect((await send('GET', `/Users/${id}`)).json.active).toBe(true);
    crash = false;
    const restarted = client(createScimHandler({ storeDir: dir, enqueue: crashing, dryRun: false }));
    expect((await restarted('PATCH', `/Users/${id}`, body)).status).toBe(200);
    expect(rec.calls.map((e) => e.key)).toEqual([`scim:${id}:1:deactivate`, `scim:${id}:1:deactivate`]);
    expect(rec.events).toHaveLength(1);
    expect((await restarted('GET', `/Users/${id}`)).json.active).toBe(false);
  });

  it('a deactivation the journal refuses changes nothing, and the error reaches the core', async () => {
    const dir = await tempStateDir();
    const refusing: Enqueue = async () => {
      throw new Error('journal: disk full');
    };
    const send = client(createScimHandler({ storeDir: dir, enqueue: refusing, dryRun: false }));
    const id = (await send('POST', '/Users', user('ann@example.com'))).json.id as string;
    const before = await fs.readFile(path.join(dir, USERS_FILE), 'utf8');
    await expect(send('PATCH', `/Users/${id}`, patch({ op: 'replace', value: { active: false } }))).rejects.toThrow('disk full');
    await expect(send('DELETE', `/Users/${id}`)).rejects.toThrow('disk full');
    expect(await fs.readFile(path.join(dir, USERS_FILE), 'utf8')).toBe(before);
  });
});

describe('the answer waits for the enqueue, and the store for both', () => {
  function deferred() {
    const rec = recorder();
    const waiting: (() => void)[] = [];
    const enqueue: Enqueue = async (e) => {
      await new Promise<void>((resolve) => waiting.push(resolve));
      return rec.enqueue(e);
    };
    return { rec, enqueue, waiting };
  }
  /** Until the handler is waiting on the enqueue (it reads the store first), then a few more turns. */
  const untilWaiting = async (waiting: unknown[]) => {
    while (waiting.length === 0) await new Promise((r) => setTimeout(r, 2));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };

  it('the 200 comes after enqueue resolves; the user is stored inactive only then', async () => {
    const d = deferred();
    const b = await bench({ enqueue: d.enqueue });
    const id = await created(b);
    let settled = false;
    const pending = b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', value: { active: false } })).then((r) => {
      settled = true;
      return r;
    });
    await untilWaiting(d.waiting);
    expect(d.waiting).toHaveLength(1);
    // long enough for a store write (an fsync'd rename) that ran ahead of the enqueue to land; a
    // correct handler stays waiting however long this is
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false);
    const onDisk = JSON.parse(await fs.readFile(path.join(b.dir, USERS_FILE), 'utf8'));
    expect(onDisk.users[0].resource.active).toBe(true);
    d.waiting[0]?.();
    const res = await pending;
    expect(res.status).toBe(200);
    expect(JSON.parse(await fs.readFile(path.join(b.dir, USERS_FILE), 'utf8')).users[0]).toMatchObject({
      resource: { active: false },
      transitions: 1,
    });
  });

  it('two deactivations of one user at once (a provider retry while the first waits) enqueue once', async () => {
    const d = deferred();
    const b = await bench({ enqueue: d.enqueue });
    const id = await created(b);
    const body = patch({ op: 'Replace', path: 'active', value: false });
    const both = Promise.all([b.send('PATCH', `/Users/${id}`, body), b.send('PATCH', `/Users/${id}`, body)]);
    await untilWaiting(d.waiting);
    expect(d.waiting).toHaveLength(1);
    d.waiting[0]?.();
    expect((await both).map((r) => r.status)).toEqual([200, 200]);
    expect(d.rec.calls).toHaveLength(1);
  });
});

describe('the store across restarts, dry runs and bad files', () => {
  it('a new handler over the same directory sees the users and continues their counters', async () => {
    const b = await bench();
    const id = await created(b);
    await b.send('PATCH', `/Users/${id}`, patch({ op: 'replace', value: { active: false } }));
    expect(await checkScimStore({ storeDir: b.dir, dryRun: false })).toBe(1);
    expect(await checkScimStore({ storeDir: b.dir, dryRun: true })).toBe(0);
    const again = b.restart();
    const found = await again('GET', '/Users?filter=' + encodeURIComponent('userName eq "ann@example.com"'));
    expect(found.json).toMatchObject({ totalResults: 1, Resources: [{ id, active: false }] });
    await again('PATCH', `/Users/${id}`, patch({ op: 'replace', value: { active: true } }));
    expect(b.rec.calls.map((e) => e.key)).toEqual([`scim:${id}:1:deactivate`, `scim:${id}:2:reactivate`]);
    const st = await fs.stat(path.join(b.dir, USERS_FILE));
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('never writes a password the provider sends', async () => {
    const b = await bench();
    await created(b, 'ann@example.com', { password: 'hunter2-do-not-store' });
    expect(await fs.readFile(path.join(b.dir, USERS_FILE), 'utf8')).not.toContain('hunter2');
  });

  it('a dry run keeps its own users: its deactivation does not make the real one look done', async () => {
    const dir = await tempStateDir();
    const rec = recorder();
    const dry = client(createScimHandler({ storeDir: dir, enqueue: rec.enqueue, dryRun: true }));
    const id = (await dry('POST', '/Users', user('ann@example.com'))).json.id as string;
    await dry('PATCH', `/Users/${id}`, patch({ op: 'replace', value: { active: false } }));
    expect(rec.calls).toHaveLength(1);
    await expect(fs.access(path.join(dir, DRY_RUN_USERS_FILE))).resolves.toBeUndefined();
    await expect(fs.access(path.join(dir, USERS_FILE))).rejects.toThrow();
    const real = client(createScimHandler({ storeDir: dir, enqueue: rec.enqueue, dryRun: false }));
    expect((await real('GET', `/Users/${id}`)).status).toBe(404);
  });

  const bad: [string, string][] = [
    ['not JSON', '{"schemaVersion": 1, "users": ['],
    [
      'a field of the wrong type',
      JSON.stringify({
        schemaVersion: 1,
        users: [{ id: 'a', version: '1', transitions: 0, created: 'x', lastModified: 'x', resource: { userName: 'a' } }],
      }),
    ],
    ['an unknown schema version', JSON.stringify({ schemaVersion: 2, users: [] })],
    [
      'two users with one id',
      JSON.stringify({
        schemaVersion: 1,
        users: [1, 2].map(() => ({
          id: 'a',
          version: 1,
          transitions: 0,
          created: '2026-01-01T00:00:00.000Z',
          lastModified: '2026-01-01T00:00:00.000Z',
          resource: { userName: 'a' },
        })),
      }),
    ],
  ];
  for (const [what, text] of bad)
    it(`a store file with ${what} is an error for every request, and is left as it was`, async () => {
      const b = await bench();
      const file = path.join(b.dir, USERS_FILE);
      await fs.writeFile(file, text, { mode: 0o600 });
      await expect(b.send('GET', '/Users')).rejects.toThrow(/the SCIM user store .* cannot be used/);
      await expect(checkScimStore({ storeDir: b.dir, dryRun: false })).rejects.toThrow(/cannot be used/);
      await expect(b.send('POST', '/Users', user('new@example.com'))).rejects.toThrow(/cannot be used/);
      expect(await fs.readFile(file, 'utf8')).toBe(text);
      expect(b.rec.calls).toEqual([]);
    });

  it('a store file that is a symbolic link, or writable by others, is refused', async () => {
    const b = await bench();
    const file = path.join(b.dir, USERS_FILE);
    const elsewhere = path.join(b.dir, 'elsewhere.json');
    await fs.writeFile(elsewhere, JSON.stringify({ schemaVersion: 1, users: [] }), { mode: 0o600 });
    await fs.symlink(elsewhere, file);
    await expect(b.send('GET', '/Users')).rejects.toThrow(/symbolic link/);
    await fs.unlink(file);
    await fs.writeFile(file, JSON.stringify({ schemaVersion: 1, users: [] }), { mode: 0o600 });
    await fs.chmod(file, 0o666);
    await expect(b.restart()('GET', '/Users')).rejects.toThrow(/writable by its group or others/);
  });
});
