// guard's saved log positions (src/guard/lockout-cursor.ts): written 0600 under <state>/log-cursors,
// read back only when the file is a regular file of this user that others cannot write, is JSON,
// and is a cursor of the same node, server and source; anything else is ignored, with why.
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCursor, cursorPath, loadCursor, saveCursor, type CursorKey } from '../../src/guard/lockout-cursor.js';

const key: CursorKey = { node: 'db1:5432', systemIdentifier: '7312345678901234567', source: 'sql' };
const cursor = { file: 'log/postgresql-2026-12-01_170000.csv', offset: 1234, identity: `head=1024:${'a'.repeat(32)}` };
const env = () => ({ PGREVOKE_STATE_DIR: mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-cursor-')) });
const doc = (over: Record<string, unknown> = {}, c: Record<string, unknown> = {}) => ({
  v: 1,
  ...key,
  cursor: { ...cursor, ...c },
  ...over,
});

describe('guard lockout cursors', () => {
  it('saved 0600 and read back', async () => {
    const e = env();
    await saveCursor(key, cursor, e);
    const file = await cursorPath(key, e);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    expect(await loadCursor(key, e)).toEqual({ cursor, ignored: null });
    // another server under the same name (rebuilt: another system identifier) has none
    expect(await loadCursor({ ...key, systemIdentifier: '1' }, e)).toEqual({ cursor: null, ignored: null });
  });

  it.each([
    ['another version', doc({ v: 2 })],
    ['another node', doc({ node: 'db2:5432' })],
    ['another source', doc({ source: 'file:/var/log/x.log' })],
    ['no cursor', doc({ cursor: null })],
    ['a file with ..', doc({}, { file: 'log/../../etc/passwd' })],
    ['a file with NUL', doc({}, { file: 'log/a\0b' })],
    ['an empty file', doc({}, { file: '' })],
    ['a negative offset', doc({}, { offset: -1 })],
    ['a fractional offset', doc({}, { offset: 1.5 })],
    ['an offset as text', doc({}, { offset: '12' })],
    ['a bad identity', doc({}, { identity: 'head=1:zz' })],
    ['an array', [doc()]],
  ])('a cursor with %s is refused', (_what, d) => {
    expect(typeof checkCursor(d, key)).toBe('string');
  });

  it('a link, a file others can write, and one that is not JSON are ignored with why', async () => {
    const e = env();
    await saveCursor(key, cursor, e);
    const file = await cursorPath(key, e);
    const real = path.join(e.PGREVOKE_STATE_DIR, 'real.json');
    await fs.rename(file, real);
    await fs.symlink(real, file);
    expect((await loadCursor(key, e)).ignored).toMatch(/symbolic link/);
    await fs.rm(file);
    await fs.copyFile(real, file);
    await fs.chmod(file, 0o666);
    expect((await loadCursor(key, e)).ignored).toMatch(/writable by its group or others/);
    await fs.rm(file);
    await fs.writeFile(file, '{"v":1,', { mode: 0o600 });
    expect(await loadCursor(key, e)).toEqual({ cursor: null, ignored: expect.stringMatching(/not JSON/) });
  });
});
