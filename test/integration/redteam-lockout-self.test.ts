// Red team (issue 16): the engine never counted failures from the address its own connection comes
// from, nor failures of its own login role from anywhere. Guard running on the database host and
// connecting over 127.0.0.1 thus exempted every local client: a role with dblink or postgres_fdw
// (or anyone with a shell there) could guess alice's password from 127.0.0.1 for ever, and the
// engine's role (often a superuser) could be guessed from everywhere. What must hold instead: only a
// lockout that would refuse the engine's own connection is not made (its role from its address, a
// ban of its address), and that is said; everything else counts. Real failed logins, the real log
// reader (csvlog over SQL), the real engine, the server's own pg_hba.conf.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLockouts } from '../../src/lockout/store.js';
import type { LockoutEvent, LockoutNode } from '../../src/lockout/types.js';
import { MAJORS, type TestCluster } from '../helpers/cluster.js';
import { HARDENED_HBA, lockoutEngine, loginFrom, redTeamStart, startRedTeam } from '../helpers/lockout.js';
import { attempt, pollFor } from '../helpers/serverlog.js';

describe.each(MAJORS)('red team: failures from the engine’s own address and of its own role, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let node: LockoutNode;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-redteam-self-'));

  beforeAll(async () => {
    ({ cl, client, node } = await startRedTeam(major));
  });
  afterAll(async () => {
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  it('the engine connects from 127.0.0.1', async () => {
    expect((await client.query<{ a: string }>('SELECT host(inet_client_addr()) AS a')).rows[0]!.a).toBe('127.0.0.1');
  });

  it('alice guessed from the engine’s own address (a local client, dblink) is locked there; the engine and alice elsewhere still get in', async () => {
    const { env, source } = await redTeamStart(cl, client, tmp);
    const e = lockoutEngine([node], env);
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'alice', from: '127.0.0.1' })).toBe('28P01');
    await e.ingest(await pollFor(source, 3));
    await e.enforce(new Date());
    const active = (await readLockouts(env)).filter((l) => !l.ended);
    expect(active.map((l) => [l.kind, l.role, l.address, l.applied.length])).toEqual([['address', 'alice', '127.0.0.1', 1]]);
    expect(await loginFrom(cl, '127.0.0.1', 'alice', 'pw-alice')).toBe('28000');
    expect(await loginFrom(cl, '127.0.0.2', 'alice', 'pw-alice')).toBe('allow');
    expect(await loginFrom(cl, '127.0.0.1', 'postgres', cl.password)).toBe('allow');
  });

  it('the engine’s own role guessed from another address is locked there; from its own address it is not, nor is that address banned: said, and the engine still gets in', async () => {
    const { env, source } = await redTeamStart(cl, client, tmp);
    const events: LockoutEvent[] = [];
    const e = lockoutEngine([node], env, { banAddressAfter: 6 }, { onEvent: (x) => events.push(x) });
    // HARDENED_HBA takes postgres from 127.0.0.1 alone: from 127.0.0.7 its reject line refuses it
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'postgres', from: '127.0.0.7' })).toBe('28000');
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'postgres', from: '127.0.0.1' })).toBe('28P01');
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: `ghost_${i}`, from: '127.0.0.1' })).toBe('28000');
    await e.ingest(await pollFor(source, 9));
    await e.enforce(new Date());
    const active = (await readLockouts(env)).filter((l) => !l.ended);
    expect(active.map((l) => [l.kind, l.role, l.address])).toEqual([['address', 'postgres', '127.0.0.7']]);
    const said = events.filter((x) => x.event === 'cap').map((x) => x.detail);
    expect(said.join('\n')).toMatch(/"postgres" from 127\.0\.0\.1 .*the engine's own connection/);
    expect(said.join('\n')).toMatch(/ban of 127\.0\.0\.1 .*the engine's own connection/);
    expect(await loginFrom(cl, '127.0.0.1', 'postgres', cl.password)).toBe('allow');
    expect(HARDENED_HBA).toContain('host all postgres 127.0.0.1/32 scram-sha-256');
  });
});
