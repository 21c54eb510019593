// Knock bookkeeping (src/lockout/engine.ts): under a flood against a lockout in force every pass
// has knocks; they are written at most every KNOCK_WRITE_MS (or with the next change, or at
// flush), while a new lockout or an expiry is written by the pass that makes it. A real state
// directory; no node (nothing is enforced here).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KNOCK_WRITE_MS, LockoutEngine } from '../../src/lockout/engine.js';
import { readLockouts, storeStamp, updateLockouts } from '../../src/lockout/store.js';
import type { LockoutNode } from '../../src/lockout/types.js';
import type { ConnParams } from '../../src/pg/conninfo.js';
import type { AuthFailure } from '../../src/serverlog/types.js';
import { storedLockout, testPolicy } from '../helpers/lockout.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const fail = (address: string, atMs: number): AuthFailure => ({
  at: new Date(atMs).toISOString(),
  user: 'alice',
  database: 'postgres',
  address,
  sqlstate: '28P01',
  kind: 'password',
  message: 'password authentication failed for user "alice"',
  hbaLine: null,
  pid: 1,
});

async function setup() {
  const env = { PGREVOKE_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-knocks-')) };
  const held = storedLockout({ since: new Date(T0).toISOString(), until: new Date(T0 + 900_000).toISOString(), applied: ['n1'] });
  await updateLockouts(() => ({ list: [held], result: null }), env);
  // the lockout's node, never connected: the engine counts against its own nodes' lockouts only
  const node: LockoutNode = { name: held.nodes[0]!, params: {} as ConnParams, client: () => null };
  const e = new LockoutEngine({ policy: testPolicy(), nodes: [node], env, operator: { osUser: 'test', host: 'here' } });
  return { env, e, held };
}

describe('knocks on lockouts in force', () => {
  it('are written at most every KNOCK_WRITE_MS under a flood, all of them at flush', async () => {
    const { env, e } = await setup();
    const knocks = async () => (await readLockouts(env))[0]!.knocks;
    let writes = 0;
    let stamp = await storeStamp(env);
    // 50 passes of 20 knocks each, 100 ms apart: 5 s of flood
    for (let p = 0; p < 50; p++) {
      const t = T0 + 1000 + p * 100;
      await e.ingest(
        Array.from({ length: 20 }, () => fail('127.0.0.2', t)),
        new Date(t),
      );
      const s = await storeStamp(env);
      if (s !== stamp) writes++;
      stamp = s;
    }
    // the first pass's knocks at once, then one write per KNOCK_WRITE_MS (5 s: at the pass 5 s later)
    expect(KNOCK_WRITE_MS).toBe(5000);
    expect(writes).toBe(1);
    expect(await knocks()).toBe(20);
    await e.ingest([fail('127.0.0.2', T0 + 6000)], new Date(T0 + 6000));
    expect(await knocks()).toBe(50 * 20 + 1);
    await e.ingest([fail('127.0.0.2', T0 + 6100)], new Date(T0 + 6100));
    expect(await knocks()).toBe(50 * 20 + 1);
    await e.flush(new Date(T0 + 6200));
    const [l] = await readLockouts(env);
    expect([l!.knocks, l!.lastKnock]).toEqual([50 * 20 + 2, new Date(T0 + 6100).toISOString()]);
  });

  it('a new lockout is written by the pass that makes it, the knocks waiting with it', async () => {
    const { env, e } = await setup();
    await e.ingest([fail('127.0.0.2', T0 + 1000)], new Date(T0 + 1000));
    await e.ingest([fail('127.0.0.2', T0 + 1100)], new Date(T0 + 1100));
    expect((await readLockouts(env))[0]!.knocks).toBe(1);
    const t = T0 + 1200;
    const made = await e.ingest([fail('127.0.9.3', t), fail('127.0.9.3', t), fail('127.0.9.3', t)], new Date(t));
    expect(made.map((l) => l.address)).toEqual(['127.0.9.3']);
    const list = await readLockouts(env);
    expect(list.map((l) => [l.address, l.knocks])).toEqual([
      ['127.0.0.2', 2],
      ['127.0.9.3', 0],
    ]);
  });
});
