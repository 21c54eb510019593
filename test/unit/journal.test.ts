// The record file itself, on real file systems: torn lines (a crash, a full disk) do not lose the
// record, a restore mark after a torn tail starts its own line, and a full disk during the run is
// reported at once (the run stops on it) rather than discovered at the end.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CutoffRecord, markRestored, parseRecord, readRecords } from '../../src/record/journal.js';

const begin = (startedAt: string) => ({
  type: 'begin',
  schemaVersion: 1,
  startedAt,
  playbook: 'contain-only',
  operator: { osUser: 'root', host: 'h' },
  reasonText: null,
  nodes: [
    { node: 'h:5432', systemIdentifier: '1', standby: false, plan: { node: 'h:5432', roles: [{ name: 'r', oid: 16384 }], steps: [] } },
  ],
});

describe('cutoff records', () => {
  it('a torn line anywhere is skipped, the record kept; a restore mark after a torn tail starts its own line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-journal-'));
    const file = path.join(dir, 'r.jsonl');
    writeFileSync(file, `${JSON.stringify(begin('2026-12-01T00:00:00.000Z'))}\n{"type":"step","at":"x","node":"h:5432","st`, {
      mode: 0o600,
    });
    await markRestored(file, 'h:5432', 'r');
    await markRestored(file, 'h:5432', 'r');
    const rec = parseRecord(file, readFileSync(file, 'utf8'))!;
    expect(rec).not.toBeNull();
    expect(rec.restored).toHaveLength(2);
    expect(readFileSync(file, 'utf8').split('\n')[1]).toBe('{"type":"step","at":"x","node":"h:5432","st');
  });

  // a tmpfs of its own: root may mount here (CI runs as root)
  if (process.getuid?.() === 0)
    it('a full disk after the begin line: the failing append is reported at once, and end() throws', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-journal-full-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
      try {
        const env = { PGREVOKE_STATE_DIR: path.join(dir, 'state') };
        const record = await CutoffRecord.begin(begin('2026-12-01T00:00:01.000Z') as never, env);
        const failures: unknown[] = [];
        record.onFailure = (err) => failures.push(err);
        // fill what is left
        await fs.writeFile(path.join(dir, 'filler'), Buffer.alloc(64 * 1024)).catch(() => undefined);
        record.step('h:5432', {
          index: 0,
          action: 'snapshot',
          status: 'done',
          detail: 'x'.repeat(8192),
          database: null,
          role: null,
          executed: [],
          durationMs: 1,
        });
        record.step('h:5432', {
          index: 1,
          action: 'contain',
          status: 'done',
          detail: null,
          database: null,
          role: null,
          executed: [],
          durationMs: 1,
        });
        await expect(record.end(0, { big: 'y'.repeat(8192) })).rejects.toThrow(/ENOSPC/);
        expect(failures).toHaveLength(1);
        // the begin line survived: the record is still found
        await fs.rm(path.join(dir, 'filler'));
        expect((await readRecords(env)).map((r) => r.begin.startedAt)).toEqual(['2026-12-01T00:00:01.000Z']);
      } finally {
        execFileSync('umount', [dir]);
      }
    });
});
