// Red team (issue 17): the journal runs a redelivery key once, and both providers' keys share it.
// The GitHub adapter used X-GitHub-Delivery as it came (an unsigned header, any of [A-Za-z0-9._:-]),
// and SCIM's keys are scim:<user id>:<n>:<action>: whoever holds the webhook secret (not the SCIM
// token) could send a delivery with id scim:<id>:1:deactivate ahead of the real deactivation,
// which the journal then took for a redelivery and never ran. GitHub's keys are github:<delivery>.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createGithubHandler } from '../../src/serve/github/index.js';
import { signBody } from '../../src/serve/github/signature.js';
import { ServeJournal } from '../../src/serve/journal.js';
import { createScimHandler } from '../../src/serve/scim/index.js';
import type { Enqueue } from '../../src/serve/types.js';
import { client, patch, user } from './serve-scim-harness.js';

const SECRET = 'webhook secret';
const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

describe('redelivery keys: one provider cannot name another provider event', () => {
  it("a GitHub delivery id shaped as a SCIM key does not make the SCIM user's deactivation a duplicate", async () => {
    const state = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-keys-'));
    dirs.push(state);
    await fs.chmod(state, 0o700);
    const journal = await ServeJournal.open({ dryRun: false }, { PGREVOKE_STATE_DIR: state });
    const enqueue: Enqueue = async (e) => {
      const { entry, duplicate } = await journal.accept(e, ['role_of_' + (e.identity.user ?? e.identity.github)]);
      return { id: entry.event.id, duplicate };
    };
    const send = client(createScimHandler({ storeDir: path.join(state, 'serve'), enqueue, dryRun: false }));
    const github = createGithubHandler({ secret: SECRET, org: 'acme', teams: [], enqueue });

    const created = await send('POST', '/Users', user('alice@example.com'));
    const id = created.json.id as string;
    const body = Buffer.from(
      JSON.stringify({
        action: 'member_removed',
        membership: { user: { login: 'nobody-gh' } },
        organization: { login: 'acme' },
      }),
    );
    const forged = await github({
      method: 'POST',
      path: '',
      query: new URLSearchParams(),
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'organization',
        'x-github-delivery': `scim:${id}:1:deactivate`,
        'x-hub-signature-256': signBody(SECRET, body),
      },
      rawBody: body,
      baseUrl: 'http://x/github',
    });
    expect(forged.status).toBe(202);

    const off = await send('PATCH', `/Users/${id}`, patch({ op: 'replace', path: 'active', value: false }));
    expect(off.status).toBe(200);
    const alice = journal.pending().filter((e) => e.event.provider === 'scim');
    expect(alice.map((e) => e.event.identity)).toEqual([{ user: 'alice@example.com' }]);
    expect(journal.pending().map((e) => e.event.key)).toEqual([`github:scim:${id}:1:deactivate`, `scim:${id}:1:deactivate`]);
  });
});
