// The HBA block: quoting as hba.c next_token() reads it, idempotence, names it cannot express, and
// the atomic replace that keeps a backup (in the state directory, pruned), the owner and the mode.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  confirmEdit,
  hasBlock,
  hbaInexpressible,
  hbaQuote,
  KEEP_BACKUPS,
  locallyWritable,
  lostEdits,
  rejectBlock,
  replaceFile,
  restoreFile,
  withBlocks,
} from '../../src/playbook/hba-file.js';

const AT = new Date('2030-01-02T03:04:05.000Z');

describe('HBA block text', () => {
  it('quotes names as pg_hba.conf tokens: a double quote is written twice', () => {
    expect(hbaQuote('a"b')).toBe('"a""b"');
    expect(hbaQuote(`Robert'); DROP TABLE accounts;--`)).toBe(`"Robert'); DROP TABLE accounts;--"`);
    expect(hbaQuote('all')).toBe('"all"'); // quoted: a name, not the keyword
  });

  it('is a marked block of reject lines for local and host connections', () => {
    expect(rejectBlock('a"b', AT)).toEqual([
      '# pgrevoke cutoff BEGIN "a""b" 2030-01-02T03:04:05.000Z',
      'local all,replication "a""b" reject',
      'host all,replication "a""b" all reject',
      '# pgrevoke cutoff END "a""b"',
    ]);
  });

  it('is prepended once per role and never duplicated', () => {
    const orig = 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n';
    const first = withBlocks(orig, ['upper'], AT)!;
    expect(first.added).toEqual(['upper']);
    expect(first.content.startsWith('# pgrevoke cutoff BEGIN "upper" ')).toBe(true);
    expect(first.content.endsWith(orig)).toBe(true);
    expect(withBlocks(first.content, ['upper'], AT)).toBeNull();
    const second = withBlocks(first.content, ['upper', 'UPPER'], AT)!;
    expect(second.added).toEqual(['UPPER']);
    expect(second.content.match(/BEGIN "upper"/g)).toHaveLength(1);
    expect(hasBlock(second.content, 'UPPER')).toBe(true);
    expect(hasBlock(second.content, 'Upper')).toBe(false);
    expect(hasBlock(second.content, 'upp')).toBe(false); // a prefix of a name is another name
  });

  it('says which names it cannot express', () => {
    expect(hbaInexpressible('line\nbreak', 15)).toMatch(/line break/);
    expect(hbaInexpressible('cr\rhere', 15)).toMatch(/line break/);
    expect(hbaInexpressible('/regexish', 16)).toMatch(/regular expression/);
    expect(hbaInexpressible('/regexish', 15)).toBeNull(); // a literal name before 16
    expect(hbaInexpressible('ÜNI 𝔐', 18)).toBeNull();
    expect(hbaInexpressible('a"b', 18)).toBeNull();
  });
});

describe('replacing the file', () => {
  it('keeps a private backup in the state directory, the mode, and restores byte for byte', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-hba-'));
    const env = { PGREVOKE_STATE_DIR: path.join(dir, 'state') };
    const file = path.join(dir, 'pg_hba.conf');
    writeFileSync(file, 'local all all trust\n');
    chmodSync(file, 0o640);
    expect(await locallyWritable(file)).toBeNull();
    const { backup, written } = await replaceFile(file, 'new content\n', new Date(), env);
    expect(written).toBe(file);
    expect(path.dirname(backup)).toBe(path.join(dir, 'state', 'hba-backups'));
    expect(readFileSync(file, 'utf8')).toBe('new content\n');
    expect(readFileSync(backup, 'utf8')).toBe('local all all trust\n');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(statSync(backup).mode & 0o777).toBe(0o600);
    await restoreFile(file, backup);
    expect(readFileSync(file, 'utf8')).toBe('local all all trust\n');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(await locallyWritable(path.join(dir, 'missing'))).toMatch(/does not exist/);
  });

  it(`prunes a file's backups to the last ${KEEP_BACKUPS}, leaving other files' alone`, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-hba-'));
    const env = { PGREVOKE_STATE_DIR: path.join(dir, 'state') };
    const [a, b] = [path.join(dir, 'a.conf'), path.join(dir, 'b.conf')];
    writeFileSync(a, 'a0\n');
    writeFileSync(b, 'b0\n');
    await replaceFile(b, 'b1\n', new Date(), env);
    const made: string[] = [];
    for (let i = 1; i <= KEEP_BACKUPS + 5; i++)
      made.push((await replaceFile(a, `a${i}\n`, new Date(Date.UTC(2030, 0, 1, 0, 0, i)), env)).backup);
    const left = readdirSync(path.join(dir, 'state', 'hba-backups')).map((f) => path.join(dir, 'state', 'hba-backups', f));
    expect(left.filter((f) => path.basename(f).startsWith('a.conf.')).sort()).toEqual(made.slice(5).sort());
    expect(left.filter((f) => path.basename(f).startsWith('b.conf.'))).toHaveLength(1);
  });
});

describe('the edit confirmed after the reload (a writer that took no lock)', () => {
  it('names an added block no longer in the file (exact lines) and a removed block back in it', async () => {
    const next = withBlocks('local all all trust\n', ['a', 'b'], AT)!;
    expect(lostEdits(next.content, { added: next.blocks })).toEqual([]);
    const other = withBlocks('local all all trust\n', ['b'], AT)!.content; // someone wrote from an older copy
    expect(lostEdits(other, { added: next.blocks })).toEqual([`the block "${rejectBlock('a', AT)[0]}" is not in it`]);
    // a block for a at another time is not the block this edit wrote
    expect(lostEdits(withBlocks(other, ['a'], new Date(0))!.content, { added: next.blocks })).toHaveLength(1);
    expect(lostEdits(next.content, { removed: ['a'] })).toEqual(['a pgrevoke block for "a" is in it again']);
    expect(lostEdits(other, { removed: ['a'] })).toEqual([]);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-confirm-')), 'pg_hba.conf');
    writeFileSync(file, other);
    await expect(confirmEdit(file, { added: next.blocks })).rejects.toThrow(`${file} was changed by another writer during the edit`);
    await expect(confirmEdit(file, { added: [next.blocks[1]!] })).resolves.toBeUndefined();
  });
});
