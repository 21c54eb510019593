// The failure counts below the threshold across an engine restart (src/lockout/tally-store.ts,
// policy.ts's restore): times outside the window are dropped on restore, the counts are the
// cluster's (an engine of other nodes does not get them), and a hostile lockout-tally.json is set
// aside with a warning, never fatal, the lockouts untouched. A real state directory; no node is
// connected (nothing is enforced).
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockoutEngine } from '../../src/lockout/engine.js';
import { Tally } from '../../src/lockout/policy.js';
import { readLockouts } from '../../src/lockout/store.js';
import { readTally, TALLY_FILE } from '../../src/lockout/tally-store.js';
import type { LockoutEvent, LockoutNode } from '../../src/lockout/types.js';
import type { ConnParams } from '../../src/pg/conninfo.js';
import { passwordFailure, testPolicy } from '../helpers/lockout.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const MIN = 60_000;
const fail = passwordFailure;
const node = (name: string): LockoutNode => ({ name, params: {} as ConnParams, client: () => null });
const fresh = () => ({ PGREVOKE_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-lockout-tally-')) });
const engine = (env: NodeJS.ProcessEnv, names = ['n1', 'n2'], events: LockoutEvent[] = []) =>
  new LockoutEngine({
    policy: testPolicy({ after: 5 }),
    nodes: names.map(node),
    env,
    operator: { osUser: 'test', host: 'here' },
    onEvent: (e) => events.push(e),
  });

describe('lockout counts across a restart', () => {
  it('restores only the times still inside the window', () => {
    // 10 minute window, 3 to lock: two times restored, one of them 11 minutes old at restore
    const before = new Tally(testPolicy());
    before.decide([fail('alice', '127.0.0.2', T0 - 9 * MIN), fail('alice', '127.0.0.2', T0 - MIN)], [], T0);
    const kept = before.snapshot(T0);
    expect(kept.pairs).toEqual([['alice\u0000127.0.0.2', [T0 - 9 * MIN, T0 - MIN]]]);

    const late = new Tally(testPolicy());
    late.restore(kept, T0 + 2 * MIN);
    expect(late.decide([fail('alice', '127.0.0.2', T0 + 2 * MIN)], [], T0 + 2 * MIN).lock).toEqual([]);
    expect(late.decide([fail('alice', '127.0.0.2', T0 + 2 * MIN + 1)], [], T0 + 2 * MIN + 1).lock.map((l) => l.count)).toEqual([3]);

    const soon = new Tally(testPolicy());
    soon.restore(kept, T0);
    expect(soon.decide([fail('alice', '127.0.0.2', T0)], [], T0).lock.map((l) => [l.role, l.address, l.count])).toEqual([
      ['alice', '127.0.0.2', 3],
    ]);
    // nothing restored is kept past the window, or past need - 1 per key
    const all = new Tally(testPolicy());
    all.restore({ pairs: [['k', [T0 - 20 * MIN, T0 - 3, T0 - 2, T0 - 1]]], roles: [], addresses: [] }, T0);
    expect(all.snapshot(T0).pairs).toEqual([['k', [T0 - 2, T0 - 1]]]);
  });

  it("an engine restarted on the cluster's nodes keeps the counts; another cluster's engine does not", async () => {
    const env = fresh();
    const first = engine(env);
    await first.ingest(
      [0, 1, 2].map((i) => fail('alice', '127.0.0.2', T0 + i)),
      new Date(T0 + 10),
    );
    await first.flush(new Date(T0 + 20));
    expect(statSync(path.join(env.PGREVOKE_STATE_DIR, TALLY_FILE)).mode & 0o777).toBe(0o600);
    expect((await readTally(env)).map((e) => [e.nodes, e.pairs])).toEqual([
      [['n1', 'n2'], [['alice\u0000127.0.0.2', [T0, T0 + 1, T0 + 2]]]],
    ]);

    // another cluster, sharing the state directory: its own counts, and the first cluster's entry kept
    const other = engine(env, ['m1']);
    expect(
      await other.ingest(
        [3, 4].map((i) => fail('alice', '127.0.0.2', T0 + i)),
        new Date(T0 + 30),
      ),
    ).toEqual([]);
    await other.flush(new Date(T0 + 40));
    expect((await readTally(env)).map((e) => e.nodes)).toEqual([['n1', 'n2'], ['m1']]);

    // the same cluster (a node renamed or added keeps it): 2 more lock at 5
    const again = engine(env, ['n2', 'n3']);
    const made = await again.ingest(
      [3, 4].map((i) => fail('alice', '127.0.0.2', T0 + 100 + i)),
      new Date(T0 + 200),
    );
    expect(made.map((l) => [l.role, l.address, l.count])).toEqual([['alice', '127.0.0.2', 5]]);
    expect((await readLockouts(env)).map((l) => l.count)).toEqual([5]);
  });

  it.each([
    ['a symbolic link', (file: string) => symlinkSync('/etc/passwd', file), /it is a symbolic link/],
    ['not JSON', (file: string) => writeFileSync(file, '{', { mode: 0o600 }), /it is not JSON/],
    [
      'malformed (a time that is not one)',
      (file: string) =>
        writeFileSync(
          file,
          JSON.stringify({
            schemaVersion: 1,
            clusters: [{ nodes: ['n1'], windowMs: 600000, written: 'x', pairs: [], roles: [], addresses: [] }],
          }),
          { mode: 0o600 },
        ),
      /clusters\[0\]\.written/,
    ],
    ['writable by others', (file: string) => writeFileSync(file, '{}', { mode: 0o666 }), /writable by its group or others/],
  ])('a tally file that is %s is set aside with one warning, never fatal', async (_what, plant, why) => {
    const env = fresh();
    const first = engine(env);
    await first.ingest([fail('bob', '127.0.0.9', T0)], new Date(T0));
    await first.flush(new Date(T0 + 1));
    const file = path.join(env.PGREVOKE_STATE_DIR, TALLY_FILE);
    rmSync(file);
    plant(file);
    if (/writable/.test(String(why))) chmodSync(file, 0o666);
    await expect(readTally(env)).rejects.toThrow(why);

    const events: LockoutEvent[] = [];
    const next = engine(env, ['n1'], events);
    // counting starts afresh: 4 failures do not lock at 5 (the one before the restart is gone)
    expect(
      await next.ingest(
        [1, 2, 3, 4].map((i) => fail('bob', '127.0.0.9', T0 + i)),
        new Date(T0 + 10),
      ),
    ).toEqual([]);
    expect(events.map((e) => [e.event, e.detail])).toEqual([
      ['failed', expect.stringMatching(/failure counts kept before the restart were not restored: refusing the lockout counts/)],
    ]);
    expect(events[0]!.detail).toMatch(why);
    // the file is replaced by the engine's own at the next write
    await next.flush(new Date(T0 + 20));
    expect(JSON.parse(readFileSync(file, 'utf8')).clusters[0].pairs).toEqual([['bob\u0000127.0.0.9', [T0 + 1, T0 + 2, T0 + 3, T0 + 4]]]);
    expect(await readLockouts(env)).toEqual([]);
  });
});
