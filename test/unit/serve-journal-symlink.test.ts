// serve's journal is never read through a link: a journal.jsonl that is a symbolic link (to a file
// that would read as a journal) refuses the start with a usage error naming the file, and the
// link's target is left as it was.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ServeJournal } from '../../src/serve/journal.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

describe('serve journal: a symbolic link', () => {
  it('is refused, naming the file, and what it points to is not touched', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-serve-journal-link-'));
    dirs.push(dir);
    const env = { PGREVOKE_STATE_DIR: path.join(dir, 'state') };
    const serve = path.join(dir, 'state', 'serve');
    await fs.mkdir(serve, { recursive: true, mode: 0o700 });
    await fs.chmod(path.join(dir, 'state'), 0o700);
    const target = path.join(dir, 'elsewhere.jsonl');
    const text = `${JSON.stringify({
      type: 'accepted',
      event: {
        id: 'a',
        key: 'k',
        provider: 'github',
        action: 'deactivate',
        identity: { github: 'alice-gh' },
        summary: 's',
        receivedAt: '2026-01-01T00:00:00.000Z',
      },
      roles: ['alice'],
    })}\n`;
    await fs.writeFile(target, text, { mode: 0o600 });
    await fs.symlink(target, path.join(serve, 'journal.jsonl'));
    await expect(ServeJournal.open({ dryRun: false }, env)).rejects.toThrow(/journal\.jsonl cannot be used: it is a symbolic link/);
    expect(await fs.readFile(target, 'utf8')).toBe(text);
    expect((await fs.lstat(path.join(serve, 'journal.jsonl'))).isSymbolicLink()).toBe(true);
  });
});
