// serve's journal's nextDue() on a real state directory: a backoff that has ended (between the
// worker's claim finding nothing due and its question when to look again) is due now, not
// forgotten; an event due but held behind an older one owed for a shared role waits on that one's
// backoff, not on "now" (which would spin the worker).
import { describe, expect, it } from 'vitest';
import { ServeJournal } from '../../src/serve/journal.js';
import { input, stateDirs } from './serve-journal-helpers.js';

const stateEnv = stateDirs('pgrevoke-serve-nextdue-');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('serve journal nextDue', () => {
  it('an overdue backoff is due now', async () => {
    const j = await ServeJournal.open({ dryRun: false }, await stateEnv());
    const e = (await j.accept(input('e1'), ['alice'])).entry;
    expect(await j.claim()).toBe(e);
    await j.attempt(e, 'node down', 5);
    expect(j.nextDue()).toBeGreaterThan(Date.now() - 5);
    await sleep(20);
    const due = j.nextDue();
    expect(due).not.toBeNull();
    expect(due!).toBeLessThanOrEqual(Date.now());
    expect(await j.claim()).toBe(e);
    // claimed: the worker asks again when it is done with it
    expect(j.nextDue()).toBeNull();
  });

  it('an event held behind an older one in backoff waits on that backoff', async () => {
    const j = await ServeJournal.open({ dryRun: false }, await stateEnv());
    const e1 = (await j.accept(input('e1'), ['alice'])).entry;
    await sleep(5);
    await j.accept(input('e2', 'reactivate'), ['alice']);
    expect(await j.claim()).toBe(e1);
    const t = Date.now();
    await j.attempt(e1, 'lock timeout', 60_000);
    expect(await j.claim()).toBeNull();
    expect(j.nextDue()).toBeGreaterThanOrEqual(t + 60_000);
  });

  it('nothing owed: null', async () => {
    const j = await ServeJournal.open({ dryRun: false }, await stateEnv());
    expect(j.nextDue()).toBeNull();
  });
});
