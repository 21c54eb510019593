// serve's journal on a real state directory: an accepted event is on disk when accept resolves, a
// key twice is one event (also when both arrive at once), events not done come back on reopen, a
// line torn by a crash is skipped and the next append starts a line of its own, and a dry run's
// journal is apart from the real one.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ServeJournal } from '../../src/serve/journal.js';
import { input, stateDirs } from './serve-journal-helpers.js';

const stateEnv = stateDirs('pgrevoke-serve-journal-');

describe('serve journal', () => {
  it('is on disk when accept resolves; a redelivered key is a duplicate; pending events come back on reopen', async () => {
    const env = await stateEnv();
    const j = await ServeJournal.open({ dryRun: false }, env);
    const a = await j.accept(input('d-1'), ['alice']);
    expect(a.duplicate).toBe(false);
    const text = await fs.readFile(j.file, 'utf8');
    expect(JSON.parse(text.trim())).toMatchObject({ type: 'accepted', roles: ['alice'], event: { key: 'd-1', id: a.entry.event.id } });
    const again = await j.accept(input('d-1'), ['alice']);
    expect(again).toMatchObject({ duplicate: true, entry: { event: { id: a.entry.event.id } } });
    // two deliveries of one key at once: one entry
    const [x, y] = await Promise.all([j.accept(input('d-2'), ['alice']), j.accept(input('d-2'), ['alice'])]);
    expect([x.duplicate, y.duplicate].sort()).toEqual([false, true]);
    expect(x.entry).toBe(y.entry);
    await j.finish(a.entry, { status: 'contained', records: [], detail: null, error: null, attempts: 1 });

    const reopened = await ServeJournal.open({ dryRun: false }, env);
    expect(reopened.pending().map((e) => e.event.key)).toEqual(['d-2']);
    expect((await reopened.accept(input('d-1'), ['alice'])).duplicate).toBe(true);
    expect((await fs.readFile(j.file, 'utf8')).trim().split('\n')).toHaveLength(3);
  });

  it('a line torn by a crash is skipped, and the next append starts on a line of its own', async () => {
    const env = await stateEnv();
    const j = await ServeJournal.open({ dryRun: false }, env);
    await j.accept(input('k-1'), ['alice']);
    await fs.appendFile(j.file, '{"type":"accepted","event":{"id":"torn","ke');
    const reopened = await ServeJournal.open({ dryRun: false }, env);
    expect(reopened.pending().map((e) => e.event.key)).toEqual(['k-1']);
    await reopened.accept(input('k-2'), null);
    const again = await ServeJournal.open({ dryRun: false }, env);
    expect(again.pending().map((e) => e.event.key)).toEqual(['k-1', 'k-2']);
    expect(again.pending()[1]!.roles).toBeNull();
  });

  it("a dry run's journal is its own: a rehearsed key is not a real duplicate", async () => {
    const env = await stateEnv();
    const dry = await ServeJournal.open({ dryRun: true }, env);
    await dry.accept(input('k-1'), ['alice']);
    const real = await ServeJournal.open({ dryRun: false }, env);
    expect((await real.accept(input('k-1'), ['alice'])).duplicate).toBe(false);
    expect(path.basename(dry.file)).toBe('journal-dry-run.jsonl');
    expect((await fs.stat(path.dirname(real.file))).mode & 0o777).toBe(0o700);
  });
});

const DAY = 86_400_000;
const outcome = { status: 'contained' as const, records: [], detail: null, error: null, attempts: 1 };

describe('serve journal compaction (journal_keep)', () => {
  it('on open, keeps what is owed and the keys of recent outcomes, forgets older ones, and rewrites the file only then', async () => {
    const env = await stateEnv();
    const j = await ServeJournal.open({ dryRun: false }, env);
    const old = await j.accept(input('old'), ['alice']);
    await j.finish(old.entry, outcome);
    const owed = await j.accept(input('owed'), ['bob']);
    await j.attempt(owed.entry, 'node down', 1000);
    await j.attempt(owed.entry, 'node down again', 1000);
    const before = (await fs.readFile(j.file, 'utf8')).trim().split('\n');
    expect(before).toHaveLength(5);

    // within the window: nothing dropped but the spent attempt line; a redelivery is a duplicate
    const soon = await ServeJournal.open({ dryRun: false, keepMs: 7 * DAY }, env, Date.now() + DAY);
    expect((await soon.accept(input('old'), ['alice'])).duplicate).toBe(true);
    const kept = (await fs.readFile(j.file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; error?: string });
    expect(kept.map((l) => l.type)).toEqual(['accepted', 'done', 'accepted', 'attempt']);
    expect(kept[3]!.error).toBe('node down again');
    expect(soon.pending().map((e) => [e.event.key, e.attempts])).toEqual([['owed', 2]]);

    // past it: the old outcome and its key are gone, the owed event (however old) stays with its attempts
    const later = await ServeJournal.open({ dryRun: false, keepMs: 7 * DAY }, env, Date.now() + 8 * DAY);
    expect(later.get(old.entry.event.id)).toBeUndefined();
    expect(later.pending().map((e) => [e.event.key, e.attempts])).toEqual([['owed', 2]]);
    expect((await fs.readFile(j.file, 'utf8')).trim().split('\n')).toHaveLength(2);
    expect((await later.accept(input('old'), ['alice'])).duplicate).toBe(false);
    expect((await fs.stat(j.file)).mode & 0o777).toBe(0o600);
  });

  it('a torn last line is dropped by the rewrite', async () => {
    const env = await stateEnv();
    const j = await ServeJournal.open({ dryRun: false }, env);
    await j.accept(input('k-1'), ['alice']);
    await fs.appendFile(j.file, '{"type":"accepted","event":{"id":"torn","ke');
    await ServeJournal.open({ dryRun: false }, env);
    expect(await fs.readFile(j.file, 'utf8')).toMatch(/^\{[^\n]*\}\n$/);
  });
});

describe('serve journal claims (the ServeQueue interface, local)', () => {
  it('one event at a time, oldest first, never ahead of an older one owed for one of its roles; a backoff is waited out', async () => {
    const env = await stateEnv();
    const j = await ServeJournal.open({ dryRun: false }, env);
    const e1 = (await j.accept(input('e1'), ['alice'])).entry;
    // distinct receivedAt: the order is the order accepted
    await new Promise((r) => setTimeout(r, 5));
    const e2 = (await j.accept(input('e2', 'reactivate'), ['bob', 'alice'])).entry;
    await new Promise((r) => setTimeout(r, 5));
    const e3 = (await j.accept(input('e3'), ['carol'])).entry;
    expect(j.depth()).toBe(3);
    expect(await j.claim()).toBe(e1);
    expect(await j.claim()).toBeNull();
    const t = Date.now();
    await j.attempt(e1, 'lock timeout', 60_000);
    expect(e1.attempts).toBe(1);
    // e1 waits out its backoff; e2 shares alice with it, so e3 goes first
    expect(await j.claim()).toBe(e3);
    await j.finish(e3, outcome);
    expect(await j.claim()).toBeNull();
    expect(j.nextDue()).toBeGreaterThanOrEqual(t + 60_000);
    expect(j.depth()).toBe(2);
    // after a restart the backoff is not kept: e1 first, then e2
    const again = await ServeJournal.open({ dryRun: false }, env);
    expect((await again.claim())?.event.id).toBe(e1.event.id);
    await again.finish(again.get(e1.event.id)!, outcome);
    expect((await again.claim())?.event.id).toBe(e2.event.id);
    expect(again.nextDue()).toBeNull();
  });
});
