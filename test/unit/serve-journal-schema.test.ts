// serve's journal read back on a real state directory (issue 17's red team): every line is checked
// against the journal's schema, and a line that is JSON and not a journal line (null, an accepted
// line without its event, roles as a string, an unknown action; disk damage, an editor, a hostile
// same-user write) refuses the open, naming the file and the line, instead of a bare TypeError or
// an event handed to the worker. A torn last line (no newline after it: a crash mid-append) is
// still skipped.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ServeJournal } from '../../src/serve/journal.js';

const EVENT = {
  id: 'a',
  key: 'k',
  provider: 'scim',
  action: 'deactivate',
  identity: {},
  summary: 's',
  receivedAt: '2026-01-01T00:00:00.000Z',
};
const OK = JSON.stringify({ type: 'accepted', event: { ...EVENT, id: 'ok', key: 'ok' }, roles: ['alice'] });

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

async function journalWith(text: string): Promise<NodeJS.ProcessEnv> {
  const st = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-journal-'));
  dirs.push(st);
  await fs.chmod(st, 0o700);
  await fs.mkdir(path.join(st, 'serve'), { mode: 0o700 });
  await fs.writeFile(path.join(st, 'serve', 'journal.jsonl'), text, { mode: 0o600 });
  return { PGREVOKE_STATE_DIR: st };
}

describe('journal replay of lines that are not journal lines', () => {
  for (const [line, what] of [
    ['null', /not a journal line/],
    ['{"type":"accepted"}', /event/],
    ['{"type":"accepted","event":null}', /event/],
    [JSON.stringify({ type: 'accepted', event: EVENT, roles: 'postgres' }), /roles/],
    [JSON.stringify({ type: 'accepted', event: { ...EVENT, action: 'drop' }, roles: ['alice'] }), /event\.action/],
    [JSON.stringify({ type: 'accepted', event: { ...EVENT, key: 42 }, roles: ['alice'] }), /event\.key/],
    [JSON.stringify({ type: 'attempt', id: 'ok', at: 'x', attempt: 'one', error: 'e' }), /attempt/],
    [JSON.stringify({ type: 'done', id: 'ok', at: 'x', outcome: { status: 'gone' } }), /outcome/],
    ['{"type":"accepted","event":', /not JSON/],
  ] as const)
    it(`refused, naming the file, line 2 and what is wrong: ${line.slice(0, 60)}`, async () => {
      const env = await journalWith(`${OK}\n${line}\n${OK.replace(/"ok"/g, '"ok2"')}\n`);
      const err = (await ServeJournal.open({ dryRun: false }, env).catch((e: unknown) => e)) as Error & { exitCode?: number };
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/journal\.jsonl:2\b/);
      expect(err.message).toMatch(what);
      expect(err.message).not.toMatch(/\n/);
      expect(err.exitCode).toBe(2);
      // nothing rewritten: the operator finds the line where it was
      expect(await fs.readFile(path.join(env.PGREVOKE_STATE_DIR!, 'serve', 'journal.jsonl'), 'utf8')).toContain(line);
    });

  it('a torn last line (no newline after it) is still skipped, whatever it holds', async () => {
    for (const torn of ['{"type":"accepted","event":{"id":"x","ke', 'null', '{"type":"accepted"}']) {
      const j = await ServeJournal.open({ dryRun: false }, await journalWith(`${OK}\n${torn}`));
      expect(j.pending().map((e) => e.event.key)).toEqual(['ok']);
    }
  });

  it('lines counted as in the file: a blank line counts', async () => {
    const env = await journalWith(`${OK}\n\n{"type":"accepted"}\n`);
    await expect(ServeJournal.open({ dryRun: false }, env)).rejects.toThrow(/journal\.jsonl:3\b/);
  });
});
