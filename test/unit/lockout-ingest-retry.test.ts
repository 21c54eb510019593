// A pass whose ingest throws is handed over again by guard (src/guard/lockout-cluster.ts): the
// engine must not have kept its counts then. Here the state's lock directory is unusable (a file
// where locks/ should be), so recording the lockout a batch makes fails after the batch was
// counted; the same batch again, once the state is fine, counts each failure once. A real state
// directory; no node is connected (nothing is enforced).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockoutEngine } from '../../src/lockout/engine.js';
import { readLockouts } from '../../src/lockout/store.js';
import type { LockoutNode } from '../../src/lockout/types.js';
import type { ConnParams } from '../../src/pg/conninfo.js';
import { passwordFailure, testPolicy } from '../helpers/lockout.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const fail = passwordFailure;

describe('ingest retried after it threw', () => {
  it('counts the failures once: counts are kept only once what they made is written', async () => {
    const state = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-ingest-retry-'));
    const env = { PGREVOKE_STATE_DIR: state };
    const node: LockoutNode = { name: 'n1', params: {} as ConnParams, client: () => null };
    const e = new LockoutEngine({ policy: testPolicy({ after: 3 }), nodes: [node], env, operator: { osUser: 'test', host: 'here' } });
    // two of alice (below the threshold), three of bob (a lockout: the state is written)
    const batch = [
      fail('alice', '127.0.0.2', T0),
      fail('alice', '127.0.0.2', T0 + 10),
      fail('bob', '127.0.0.3', T0 + 20),
      fail('bob', '127.0.0.3', T0 + 30),
      fail('bob', '127.0.0.3', T0 + 40),
    ];
    writeFileSync(path.join(state, 'locks'), 'not a directory');
    await expect(e.ingest(batch, new Date(T0 + 100))).rejects.toThrow(/locks/);
    expect(await readLockouts(env)).toEqual([]);

    rmSync(path.join(state, 'locks'));
    mkdirSync(path.join(state, 'locks'), { mode: 0o700 });
    const made = await e.ingest(batch, new Date(T0 + 200));
    // alice's two failures counted twice would have been four: her pair locked for two wrong passwords
    expect(made.map((l) => [l.role, l.address, l.count])).toEqual([['bob', '127.0.0.3', 3]]);
    expect((await readLockouts(env)).map((l) => l.role)).toEqual(['bob']);
    // her third failure is the threshold
    const third = await e.ingest([fail('alice', '127.0.0.2', T0 + 300)], new Date(T0 + 300));
    expect(third.map((l) => [l.role, l.address, l.count])).toEqual([['alice', '127.0.0.2', 3]]);
    rmSync(state, { recursive: true, force: true });
  });
});
