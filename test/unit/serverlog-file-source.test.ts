// The file source on files the test writes (the real server's are in
// test/integration/serverlog-file.test.ts): where it starts, partial last lines, the caps on what a
// hostile file can make it read, truncation, a new file under the name, and the refusals: a
// symbolic link, a FIFO.
import { execFileSync } from 'node:child_process';
import { promises as fs, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileLogSource } from '../../src/serverlog/file-source.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-serverlog-'));
  file = path.join(dir, 'postgresql.json');
});
afterEach(async () => fs.rm(dir, { recursive: true, force: true }));

let pid = 1000;
/** A jsonlog failure line as PostgreSQL 15+ writes it. */
function failure(user: string, host: string): string {
  pid++;
  return `${JSON.stringify({
    timestamp: '2026-12-01 14:30:01.145 UTC',
    user,
    dbname: 'postgres',
    pid,
    remote_host: host,
    remote_port: 50000,
    error_severity: 'FATAL',
    state_code: '28P01',
    message: `password authentication failed for user "${user}"`,
  })}\n`;
}
const users = async (source: FileLogSource) => (await source.poll()).map((f) => `${f.user}@${f.address}`);

describe('FileLogSource', () => {
  it('starts at the end: what was logged before the first poll does not count', async () => {
    await fs.writeFile(file, failure('old', '10.0.0.1'));
    const source = new FileLogSource({ file });
    expect(await users(source)).toEqual([]);
    await fs.appendFile(file, failure('new', '10.0.0.2'));
    expect(await users(source)).toEqual(['new@10.0.0.2']);
    expect(source.format).toBe('jsonlog');
  });

  it('a partial last line is left for the next poll; the cursor stays before it', async () => {
    await fs.writeFile(file, '');
    const source = new FileLogSource({ file });
    await source.poll();
    const line = failure('alice', '10.0.0.3');
    await fs.appendFile(file, line.slice(0, 40));
    expect(await users(source)).toEqual([]);
    expect(source.cursor()!.offset).toBe(0);
    await fs.appendFile(file, line.slice(40));
    expect(await users(source)).toEqual(['alice@10.0.0.3']);
    expect(source.cursor()!.offset).toBe(Buffer.byteLength(line));
  });

  it('a cursor handed back resumes exactly there; a file whose first bytes changed is read from 0', async () => {
    await fs.writeFile(file, failure('a', '10.0.0.4'));
    const first = new FileLogSource({ file });
    await first.poll();
    await fs.appendFile(file, failure('b', '10.0.0.5'));
    const cursor = first.cursor();
    expect(await users(new FileLogSource({ file, cursor }))).toEqual(['b@10.0.0.5']);
    // replaced in place, with more bytes than the cursor's offset: the first bytes tell
    await fs.writeFile(file, failure('c', '10.0.0.6') + failure('d', '10.0.0.7'));
    expect(await users(new FileLogSource({ file, cursor }))).toEqual(['c@10.0.0.6', 'd@10.0.0.7']);
  });

  it('truncated (it shrank): read from 0', async () => {
    await fs.writeFile(file, failure('a', '10.0.0.8') + failure('b', '10.0.0.9'));
    const source = new FileLogSource({ file });
    await source.poll();
    await fs.truncate(file, 0);
    await fs.appendFile(file, failure('c', '10.0.0.10'));
    expect(await users(source)).toEqual(['c@10.0.0.10']);
    expect(source.stats.truncations).toBe(1);
  });

  it('another file under the name: the old one read to its end first, through the handle kept open', async () => {
    await fs.writeFile(file, '');
    const source = new FileLogSource({ file });
    await source.poll();
    await fs.appendFile(file, failure('a', '10.0.1.1'));
    await fs.rename(file, `${file}.1`);
    await fs.appendFile(`${file}.1`, failure('b', '10.0.1.2')); // the server still writing to its open file
    await fs.writeFile(file, failure('c', '10.0.1.3'));
    expect(await users(source)).toEqual(['a@10.0.1.1', 'b@10.0.1.2', 'c@10.0.1.3']);
    expect(source.stats.rotations).toBe(1);
  });

  it('a hostile file: over-long lines are skipped, not buffered; each poll reads at most pollBytes', async () => {
    await fs.writeFile(file, '');
    const source = new FileLogSource({ file, maxEntry: 4096, chunkBytes: 8192, pollBytes: 20_000 });
    await source.poll();
    await fs.appendFile(file, `${'x'.repeat(50_000)}\n${failure('after', '10.0.2.1')}`);
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push(...(await users(source)));
    expect(got).toEqual(['after@10.0.2.1']);
    expect(source.tailStats().oversized).toBe(1);
  });

  it('refuses a symbolic link and a FIFO', async () => {
    const real = path.join(dir, 'real.json');
    await fs.writeFile(real, '');
    await fs.symlink(real, file);
    await expect(new FileLogSource({ file }).poll()).rejects.toThrow(/symbolic link/);
    const fifo = path.join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    await expect(new FileLogSource({ file: fifo }).poll()).rejects.toThrow(/not a regular file/);
  });

  it('a link swapped in after the file was opened is refused at the next poll', async () => {
    await fs.writeFile(file, '');
    const source = new FileLogSource({ file });
    await source.poll();
    await fs.writeFile(path.join(dir, 'other.json'), failure('planted', '10.0.3.1'));
    await fs.rm(file);
    await fs.symlink(path.join(dir, 'other.json'), file);
    await expect(source.poll()).rejects.toThrow(/symbolic link/);
  });
});
