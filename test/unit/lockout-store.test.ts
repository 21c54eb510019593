// The lockout state (src/lockout/store.ts, schema.ts): round trip, and a hostile lockouts.json refused in one line.
import { chmodSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLockouts, storePath, updateLockouts } from '../../src/lockout/store.js';
import { storedLockout as lockout } from '../helpers/lockout.js';

const fresh = () => ({ PGREVOKE_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-lockout-store-')) });
const plant = (env: NodeJS.ProcessEnv, doc: unknown) => writeFileSync(storePath(env), JSON.stringify(doc), { mode: 0o600 });

describe('lockout state', () => {
  it('round-trips through lockouts.json, mode 0600', async () => {
    const env = fresh();
    expect(await readLockouts(env)).toEqual([]);
    await updateLockouts((list) => ({ list: [...list, lockout()], result: null }), env);
    expect(await readLockouts(env)).toEqual([lockout()]);
    expect(statSync(storePath(env)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(storePath(env), 'utf8')).schemaVersion).toBe(1);
  });

  it.each([
    [
      'a line break in a role name (it would become a pg_hba.conf line)',
      lockout({ role: 'x\nhost all all 0.0.0.0/0 trust' }),
      /lockouts\[0\]\.role: role name refused: it contains a line break/,
    ],
    [
      'an address that is not one canonical IP',
      lockout({ address: '10.0.0.5/24' }),
      /lockouts\[0\]\.address: not one IP address or network/,
    ],
    ['a ban of everyone', lockout({ kind: 'address_ban', role: null, address: '0.0.0.0/0' }), /a network is a \/24 or \/64 prefix/],
    ['a network wider than a prefix', lockout({ address: '10.0.0.0/8' }), /a network is a \/24 or \/64 prefix/],
    ['a role missing from a pair lockout', lockout({ role: null }), /role is null exactly for an address_ban/],
    ['a lockout lasting years', lockout({ until: '2036-03-01T12:00:00.000Z' }), /until must be after since, by at most 366 days/],
    ['an unknown field', { ...lockout(), trust: true }, /lockouts\[0\]: Unrecognized key/i],
    ['a bad id', lockout({ id: '../../etc' }), /lockouts\[0\]\.id: an id is 16 hexadecimal digits/],
  ])('refuses %s', async (_what, l, message) => {
    const env = fresh();
    plant(env, { schemaVersion: 1, lockouts: [l] });
    const err = await readLockouts(env).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^refusing the lockout state .*lockouts\.json: /);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
    expect((err as { exitCode?: number }).exitCode).toBe(2);
  });

  it('refuses a file that is not JSON, another version, a link, or one others can write', async () => {
    const env = fresh();
    writeFileSync(storePath(env), '{"schemaVersion": 1, "lock', { mode: 0o600 });
    await expect(readLockouts(env)).rejects.toThrow(/it is not JSON/);
    plant(env, { schemaVersion: 2, lockouts: [] });
    await expect(readLockouts(env)).rejects.toThrow(/schemaVersion/);
    plant(env, { schemaVersion: 1, lockouts: [] });
    chmodSync(storePath(env), 0o666);
    await expect(readLockouts(env)).rejects.toThrow(/writable by its group or others \(mode 0666\)/);
    const linked = fresh();
    const target = path.join(linked.PGREVOKE_STATE_DIR, 'elsewhere.json');
    writeFileSync(target, JSON.stringify({ schemaVersion: 1, lockouts: [] }), { mode: 0o600 });
    symlinkSync(target, storePath(linked));
    await expect(readLockouts(linked)).rejects.toThrow(/it is a symbolic link/);
    // a refused file is never written over: the change fails too
    await expect(updateLockouts((list) => ({ list, result: null }), linked)).rejects.toThrow(/symbolic link/);
  });

  it('two concurrent updates lose neither change', async () => {
    const env = fresh();
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        updateLockouts((list) => ({ list: [...list, lockout({ id: i.toString(16).padStart(16, '0') })], result: null }), env),
      ),
    );
    expect((await readLockouts(env)).map((l) => l.id).sort()).toHaveLength(20);
  });
});
