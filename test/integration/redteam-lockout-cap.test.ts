// Red team (issue 16), fixed: the cap of MAX_ACTIVE_LOCKOUTS lockouts in force is shared by
// every kind and every address. An attacker with that many source addresses (an IPv6 /64, or here
// 127.0.0.0/8) makes that many lockouts of a real role, one failure each at --lockout-after 1 (N
// each in general); from then on no new lockout is made at all, so the brute force of the role
// from a fresh address goes on unchecked for as long as the attacker keeps the cap full (each of
// its lockouts lasts --lockout-for; it renews them as they expire). The fix (src/lockout/policy.ts):
// pair lockouts of one role within a /24 become one prefix lockout, and at the cap a role still
// failing from new places is locked from every address. Real failed logins, the real log reader
// (csvlog over SQL), the real engine, the server's own pg_hba.conf.
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockRules } from '../../src/lockout/hba-block.js';
import { MAX_ACTIVE_LOCKOUTS } from '../../src/lockout/policy.js';
import { readLockouts } from '../../src/lockout/store.js';
import type { LockoutNode, LockoutPolicy } from '../../src/lockout/types.js';
import type { AuthFailure } from '../../src/serverlog/types.js';
import { MAJORS, type TestCluster } from '../helpers/cluster.js';
import { lockoutEngine, redTeamStart, startRedTeam } from '../helpers/lockout.js';
import { attempt, pollFor } from '../helpers/serverlog.js';

/** Roles the attacker fills the cap with, few enough lockouts each (25) to stay under the bound per role. */
const ROLES = MAX_ACTIVE_LOCKOUTS / 25;

describe.each(MAJORS)('red team: lockouts of the attacker’s making, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let node: LockoutNode;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-redteam-cap-'));

  const engine = (env: NodeJS.ProcessEnv, policy: Partial<LockoutPolicy> = {}) =>
    lockoutEngine([node], env, policy, { auditLog: path.join(env.PGREVOKE_STATE_DIR!, 'audit.jsonl') });
  const flood = async (pairs: { user: string; from: string }[]) => {
    for (let i = 0; i < pairs.length; i += 50) await Promise.all(pairs.slice(i, i + 50).map((p) => attempt(cl, p)));
  };

  beforeAll(async () => {
    ({ cl, client, node } = await startRedTeam(major));
    for (let k = 0; k < ROLES; k++) await cl.sql(`CREATE ROLE r${k} LOGIN PASSWORD 'pw'`);
  });
  afterAll(async () => {
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  it('a thousand addresses of alice in five /24s are five prefix lockouts; a brute force of alice from a fresh address is still locked', async () => {
    const { env, source } = await redTeamStart(cl, client, tmp);
    const e = engine(env, { after: 1 });
    // alice herself, wrong password, once from each of MAX_ACTIVE_LOCKOUTS loopback addresses
    const sources = Array.from({ length: MAX_ACTIVE_LOCKOUTS }, (_, i) => `127.0.${10 + Math.floor(i / 200)}.${1 + (i % 200)}`);
    await flood(sources.map((from) => ({ user: 'alice', from })));
    const failures: AuthFailure[] = await pollFor(source, sources.length, 60_000);
    await e.ingest(failures);
    await e.enforce(new Date());
    const active = (await readLockouts(env)).filter((l) => !l.ended);
    expect(active.map((l) => [l.role, l.address, l.count]).sort()).toEqual(
      [10, 11, 12, 13, 14].map((n) => ['alice', `127.0.${n}.0/24`, 2]),
    );
    expect(active.reduce((c, l) => c + l.knocks, 0)).toBe(MAX_ACTIVE_LOCKOUTS - 10);
    const lines = blockRules(readFileSync(cl.hbaFile, 'utf8')).map((r) => r.line.replace(/ #.*/, ''));
    expect(lines).toContain('host all,replication "alice" 127.0.12.0/24 reject');
    expect(lines).toHaveLength(5);
    // the whole prefix is refused, the addresses not used too
    expect(await attempt(cl, { user: 'alice', password: 'pw-alice', from: '127.0.12.250' })).toBe('28000');
    // the brute force proper, from an address not used yet
    expect(await attempt(cl, { user: 'alice', from: '127.0.0.77' })).toBe('28P01');
    await e.ingest(await pollFor(source, 1));
    await e.enforce(new Date());
    const fresh = (await readLockouts(env)).filter((l) => l.address === '127.0.0.77');
    expect(fresh.map((l) => [l.role, l.kind])).toEqual([['alice', 'address']]);
    expect(await attempt(cl, { user: 'alice', password: 'pw-alice', from: '127.0.0.77' })).toBe('28000');
  }, 180_000);

  it(`after the attacker fills the ${MAX_ACTIVE_LOCKOUTS} lockouts in force (${ROLES} roles, a /24 each), alice under brute force from a fresh place is locked from every address, audited`, async () => {
    const { env, source } = await redTeamStart(cl, client, tmp);
    const e = engine(env, { after: 1 });
    const pairs = Array.from({ length: MAX_ACTIVE_LOCKOUTS }, (_, i) => ({
      user: `r${i % ROLES}`,
      from: `127.${20 + (i % ROLES)}.${Math.floor(i / ROLES)}.1`,
    }));
    await flood(pairs);
    await e.ingest(await pollFor(source, pairs.length, 60_000));
    await e.enforce(new Date());
    expect((await readLockouts(env)).filter((l) => !l.ended)).toHaveLength(MAX_ACTIVE_LOCKOUTS);
    expect(await attempt(cl, { user: 'alice', from: '127.0.0.77' })).toBe('28P01');
    await e.ingest(await pollFor(source, 1));
    await e.enforce(new Date());
    const wide = (await readLockouts(env)).filter((l) => l.role === 'alice' && !l.ended);
    expect(wide.map((l) => l.address).sort()).toEqual(['0.0.0.0/0', '::/0']);
    expect(wide[0]!.reason).toMatch(/^role-wide lockout: the cap of 1000 lockouts in force \(MAX_ACTIVE_LOCKOUTS\) is reached/);
    // alice with her own password from anywhere: refused until it ends; the engine's own role still gets in
    expect(await attempt(cl, { user: 'alice', password: 'pw-alice', from: '127.0.0.99' })).toBe('28000');
    expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    const audit = readFileSync(path.join(env.PGREVOKE_STATE_DIR, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { target: string; reason: string; address: string; detail: string });
    const mine = audit.filter((a) => a.target === 'alice');
    expect(mine.map((a) => [a.reason, a.address]).sort()).toEqual([
      ['lockout', '0.0.0.0/0'],
      ['lockout', '::/0'],
    ]);
    expect(mine[0]!.detail).toContain('MAX_ACTIVE_LOCKOUTS');
  }, 240_000);
});
