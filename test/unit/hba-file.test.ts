// The HBA block: quoting as hba.c next_token() reads it, idempotence, names it cannot express, and
// the atomic replace that keeps a backup, the owner and the mode.
import { mkdtempSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  hasBlock,
  hbaInexpressible,
  hbaQuote,
  locallyWritable,
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
  it('keeps a backup, the mode, and restores byte for byte', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-hba-'));
    const file = path.join(dir, 'pg_hba.conf');
    writeFileSync(file, 'local all all trust\n');
    chmodSync(file, 0o640);
    expect(await locallyWritable(file)).toBeNull();
    const { backup } = await replaceFile(file, 'new content\n');
    expect(readFileSync(file, 'utf8')).toBe('new content\n');
    expect(readFileSync(backup, 'utf8')).toBe('local all all trust\n');
    expect(statSync(file).mode & 0o777).toBe(0o640);
    expect(statSync(backup).mode & 0o777).toBe(0o640);
    await restoreFile(file, backup);
    expect(readFileSync(file, 'utf8')).toBe('local all all trust\n');
    expect(await locallyWritable(path.join(dir, 'missing'))).toMatch(/does not exist/);
  });
});
