// The live view of `sessions --watch` without a terminal: the frame renderer (state -> lines that fit)
// and the reducer (keys, snapshots, resizes -> state and effects); and that the terminal part leaves
// the alternate screen on every way out.
import { PassThrough } from 'node:stream';
import { stripVTControlCharacters as stripAnsi } from 'node:util';
import { Chalk } from 'chalk';
import stringWidth from 'string-width';
import { describe, expect, it } from 'vitest';
import { reduce, type Effect, type WatchEvent, type WatchKey } from '../../src/sessions/watch/keys.js';
import { plain, renderFrame } from '../../src/sessions/watch/render.js';
import { openTerminal } from '../../src/sessions/watch/terminal.js';
import {
  initialState,
  rowKey,
  visibleRows,
  watchSortFor,
  type Snapshot,
  type WatchRow,
  type WatchState,
} from '../../src/sessions/watch/state.js';

const PLAIN = new Chalk({ level: 0 });
const COLOR = new Chalk({ level: 1 });

let nextPid = 1000;
function row(over: Partial<WatchRow> = {}): WatchRow {
  return {
    node: 'db:5432',
    pid: nextPid++,
    user: 'alice',
    database: 'app',
    state: 'idle',
    seconds: 5,
    client: '10.0.0.5:51000',
    application: 'psql',
    backendStart: '2026-12-01 10:00:00+00',
    query: 'SELECT 1',
    hidden: false,
    ...over,
  };
}

const snap = (rows: WatchRow[], down: Snapshot['down'] = []): Snapshot => ({ at: '2026-12-01T12:34:56.000Z', rows, down });

function state(rows: WatchRow[], over: Partial<WatchState> = {}): WatchState {
  const s = initialState({
    title: 'PostgreSQL 18.4, postgres@db:5432/postgres',
    interval: 2,
    multiNode: false,
    sort: 'pid',
    columns: 80,
    rows: 24,
  });
  return reduce({ ...s, ...over }, { type: 'snapshot', snapshot: snap(rows) }).state;
}

/** Apply events in order; the effects they asked for, in order. */
function drive(s: WatchState, events: WatchEvent[]): { state: WatchState; effects: Effect[] } {
  const effects: Effect[] = [];
  for (const e of events) {
    const step = reduce(s, e);
    s = step.state;
    if (step.effect) effects.push(step.effect);
  }
  return { state: s, effects };
}

const ch = (c: string): WatchEvent => ({ type: 'key', key: { sequence: c, name: c.toLowerCase(), shift: c !== c.toLowerCase() } });
const named = (name: string, extra: Partial<WatchKey> = {}): WatchEvent => ({ type: 'key', key: { name, ...extra } });
const typed = (text: string) => [...text].map(ch);

const selectedPid = (s: WatchState) => visibleRows(s)[s.index]?.pid;

function expectFits(lines: string[], columns: number, rows: number): void {
  expect(lines).toHaveLength(rows);
  for (const l of lines) expect(stringWidth(stripAnsi(l)), JSON.stringify(l)).toBeLessThanOrEqual(columns);
}

describe('renderFrame', () => {
  const three = () => [
    row({ user: 'alice' }),
    row({ user: 'bob', state: 'active', seconds: 30 }),
    row({ user: 'carol', database: 'billing' }),
  ];

  it('pins the header (server, time, counts by state) on the first lines and the keys on the last', () => {
    const lines = renderFrame(state(three()), PLAIN);
    expectFits(lines, 80, 24);
    expect(lines[0]).toBe('pgrevoke sessions  PostgreSQL 18.4, postgres@db:5432/postgres'.padEnd(66) + '  12:34:56 UTC');
    expect(lines[1]).toBe('3 sessions: 1 active, 2 idle   sort: pid   every 2s');
    expect(lines[2]).toMatch(/^ {2}\s*pid user {2}database state +time client +query/);
    expect(lines[3]).toMatch(/^> /);
    expect(lines[23]).toContain('K terminate');
    expect(lines[23]).toContain('q quit');
  });

  it('the clock stays at the end of the first line when the title is cut', () => {
    const s = state([row()], { title: `PostgreSQL 18.4, postgres@${'very-long-host-name.'.repeat(4)}example:5432/postgres` });
    const [title] = renderFrame(s, PLAIN);
    expect(title).toHaveLength(80);
    expect(title).toMatch(/^pgrevoke sessions {2}PostgreSQL 18\.4, postgres@very-long-host-name\..*… {2}12:34:56 UTC$/);
  });

  it.each([
    [80, 24],
    [40, 10],
    [200, 50],
    [20, 6],
  ])('fits %ix%i with long names and queries, wide characters and escapes in them', (columns, rows) => {
    const many = Array.from({ length: 60 }, (_, i) =>
      row({
        user: i % 2 ? 'ユーザー名がとても長いロール' : `svc_${'x'.repeat(40)}`,
        database: 'd'.repeat(30),
        application: 'app\x1b[2J\x1b]0;owned\x07',
        query: `SELECT ${'very_long_column_name, '.repeat(20)} FROM t /* 絵文字 🔥 */`,
        state: i % 3 ? 'idle in transaction (aborted)' : 'active',
      }),
    );
    for (const c of [PLAIN, COLOR]) {
      const lines = renderFrame(state(many, { columns, rows }), c);
      expectFits(lines, columns, rows);
      // only the renderer's own styling escapes; nothing a client chose
      // eslint-disable-next-line no-control-regex
      for (const l of lines) expect(stripAnsi(l)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    }
  });

  it('cuts the rows to the height and scrolls with the selection; the header says which rows are shown', () => {
    const rows = Array.from({ length: 50 }, () => row());
    let s = state(rows);
    s = drive(
      s,
      Array.from({ length: 30 }, () => ch('j')),
    ).state;
    const lines = renderFrame(s, PLAIN);
    expectFits(lines, 80, 24);
    // 24 lines: title, counts, column heads, 20 rows, keys
    expect(lines[1]).toContain('rows 12-31 of 50');
    expect(lines[22]).toMatch(new RegExp(`^> +${rows[30]!.pid} `));
    expect(lines.filter((l) => l.startsWith('>'))).toHaveLength(1);
  });

  it('over several nodes: a node column, and one line per unreachable node under the counts', () => {
    const s = state([row({ node: 'billing-1' }), row({ node: '10.0.0.7:5432' })], { multiNode: true, title: '3 nodes' });
    const withDown = reduce(s, {
      type: 'snapshot',
      snapshot: snap(s.snapshot!.rows, [{ node: 'legacy-1', error: 'unreachable: connect ECONNREFUSED 127.0.0.1:1' }]),
    }).state;
    const lines = renderFrame(withDown, PLAIN);
    expectFits(lines, 80, 24);
    expect(lines[2]).toBe('legacy-1: unreachable: connect ECONNREFUSED 127.0.0.1:1');
    expect(lines[3]).toMatch(/^ {2}node +pid user/);
    expect(lines[4]).toMatch(/^> billing-1 +\d+ alice/);
    expect(lines[5]).toMatch(/^ {2}10\.0\.0\.7:5432 +\d+ alice/);
  });

  it('the bottom line: the confirmation, the filter being typed, the outcome; a too small terminal says so', () => {
    const r = row({ pid: 1234, user: 'alice', database: 'app' });
    const s = state([r]);
    expect(renderFrame(drive(s, [ch('K')]).state, PLAIN)[23]).toBe('terminate pid 1234 (alice@app)? y/N');
    expect(renderFrame(drive(s, [ch('C')]).state, PLAIN)[23]).toBe('cancel the query of pid 1234 (alice@app)? y/N');
    expect(renderFrame(drive(s, [ch('/'), ...typed('al')]).state, PLAIN)[23]).toMatch(/^filter by user or database: al_ /);
    expect(renderFrame(drive(s, [ch('K'), ch('n')]).state, PLAIN)[23]).toBe('not confirmed; nothing was signalled');
    const tiny = renderFrame({ ...s, columns: 15, rows: 3 }, PLAIN);
    expectFits(tiny, 15, 3);
    expect(tiny[0]).toMatch(/^terminal too/);
  });

  it('plain(): one line, control characters marked', () => {
    expect(plain('a\n\tb\x1b[31mc\u009b')).toBe('a b\ufffd[31mc\ufffd');
    expect(plain(null)).toBe('');
  });
});

describe('reduce', () => {
  it('j/k and the arrows move the selection, clamped at both ends', () => {
    const rows = [row(), row(), row()];
    const s = state(rows);
    expect(selectedPid(s)).toBe(rows[0]!.pid);
    expect(selectedPid(drive(s, [ch('j')]).state)).toBe(rows[1]!.pid);
    expect(selectedPid(drive(s, [ch('j'), ch('j'), ch('j'), ch('j')]).state)).toBe(rows[2]!.pid);
    expect(selectedPid(drive(s, [named('down'), named('down'), named('up')]).state)).toBe(rows[1]!.pid);
    expect(selectedPid(drive(s, [ch('k')]).state)).toBe(rows[0]!.pid);
    expect(selectedPid(drive(s, [named('end')]).state)).toBe(rows[2]!.pid);
  });

  it('the selection follows its session across refreshes and re-sorts; when it ends, the place is kept', () => {
    const [a, b, c] = [row({ seconds: 1 }), row({ seconds: 50 }), row({ seconds: 9 })];
    let s = drive(state([a!, b!, c!]), [ch('j')]).state; // by pid: b
    expect(selectedPid(s)).toBe(b!.pid);
    s = drive(s, [ch('s')]).state; // pid -> user
    s = drive(
      s,
      Array.from({ length: 4 }, () => ch('s')),
    ).state; // user, database, state, started -> duration
    expect(s.sort).toBe('duration');
    expect(visibleRows(s).map((r) => r.pid)).toEqual([b!.pid, c!.pid, a!.pid]);
    expect(selectedPid(s)).toBe(b!.pid);
    s = reduce(s, { type: 'snapshot', snapshot: snap([a!, c!, row({ seconds: 99 })]) }).state;
    expect(s.index).toBe(0); // b ended: the first place stays selected
    expect(selectedPid(s)).not.toBe(b!.pid);
  });

  it('s cycles duration, pid, user, database, state, started; --sort sets the start', () => {
    let s = state([row()], { sort: 'duration' });
    const seen = [s.sort];
    for (let i = 0; i < 6; i++) seen.push((s = drive(s, [ch('s')]).state).sort);
    expect(seen).toEqual(['duration', 'pid', 'user', 'database', 'state', 'started', 'duration']);
    expect(['pid', 'user', 'database', 'started', 'idle', 'xact_age'].map((k) => watchSortFor(k as never))).toEqual([
      'pid',
      'user',
      'database',
      'started',
      'duration',
      'duration',
    ]);
  });

  it('K then y asks to terminate exactly the selected row; any other key is a no; C the same for cancel', () => {
    const rows = [row({ user: 'alice' }), row({ user: 'bob' }), row({ user: 'carol' })];
    const s = state(rows);
    const yes = drive(s, [ch('j'), ch('K'), ch('y')]);
    expect(yes.effects).toEqual([{ kind: 'signal', action: 'terminate', row: rows[1] }]);
    expect(yes.state.mode).toEqual({ kind: 'busy', text: `terminating pid ${rows[1]!.pid} (bob@app)…` });
    expect(drive(s, [ch('K'), ch('Y')]).effects).toEqual([{ kind: 'signal', action: 'terminate', row: rows[0] }]);
    for (const no of [ch('n'), named('return'), named('escape'), ch('K')]) expect(drive(s, [ch('K'), no]).effects).toEqual([]);
    expect(drive(s, [ch('j'), ch('j'), ch('C'), ch('y')]).effects).toEqual([{ kind: 'signal', action: 'cancel', row: rows[2] }]);
    // the row confirmed is the row signalled, even when a refresh reorders the rows in between
    const moved = drive(s, [ch('j'), ch('K'), { type: 'snapshot', snapshot: snap([rows[2]!, rows[0]!]) }, ch('y')]);
    expect(moved.effects).toEqual([{ kind: 'signal', action: 'terminate', row: rows[1] }]);
  });

  it('while a signal is under way keys wait, q quits after it; its outcome shows and a refresh follows', () => {
    const s = drive(state([row()]), [ch('K'), ch('y')]).state;
    expect(drive(s, [ch('j'), ch('K')]).state.mode.kind).toBe('busy');
    expect(drive(s, [ch('q')]).effects).toEqual([{ kind: 'quit' }]);
    const done = reduce(s, { type: 'signalled', message: 'ok terminated pid 1 (alice@app)' });
    expect(done.effect).toEqual({ kind: 'refresh' });
    expect(renderFrame(done.state, PLAIN)[23]).toBe('ok terminated pid 1 (alice@app)');
    expect(renderFrame(drive(done.state, [ch('j')]).state, PLAIN)[23]).toContain('K terminate');
  });

  it('K with no row selected says so and signals nothing', () => {
    const { state: s, effects } = drive(state([]), [ch('K')]);
    expect(effects).toEqual([]);
    expect(s.message).toBe('no session selected');
  });

  it('/ filters by a part of the user or database name: Enter applies, Esc clears; hidden backends stay', () => {
    const rows = [
      row({ user: 'alice' }),
      row({ user: 'bob', database: 'Alpha' }),
      row({ user: 'carol' }),
      row({ user: null, hidden: true }),
    ];
    const s = state(rows);
    const typing = drive(s, [ch('/'), ...typed('AL')]).state;
    expect(visibleRows(typing)).toHaveLength(4); // not applied until Enter
    const applied = drive(typing, [named('return')]).state;
    expect(applied.filter).toBe('AL');
    expect(visibleRows(applied).map((r) => r.pid)).toEqual([rows[0]!.pid, rows[1]!.pid, rows[3]!.pid]);
    expect(renderFrame(applied, PLAIN)[1]).toContain('filter "AL": 3 shown');
    expect(visibleRows(drive(applied, [named('escape')]).state)).toHaveLength(4);
    expect(visibleRows(drive(applied, [ch('/'), named('escape')]).state)).toHaveLength(4);
    const edited = drive(s, [ch('/'), ...typed('bobx'), named('backspace'), named('return')]).state;
    expect(visibleRows(edited).map((r) => r.pid)).toEqual([rows[1]!.pid, rows[3]!.pid]);
    // keys typed into the filter are text, not commands
    expect(drive(s, [ch('/'), ch('q'), ch('K')]).effects).toEqual([]);
  });

  it('q and Ctrl+C quit from every mode; r refreshes now', () => {
    const s = state([row()]);
    expect(drive(s, [ch('q')]).effects).toEqual([{ kind: 'quit' }]);
    expect(drive(s, [ch('K'), named('c', { ctrl: true })]).effects).toEqual([{ kind: 'quit' }]);
    expect(drive(s, [ch('/'), named('c', { ctrl: true })]).effects).toEqual([{ kind: 'quit' }]);
    expect(drive(s, [ch('r')]).effects).toEqual([{ kind: 'refresh' }]);
  });

  it('over several nodes: the same pid on two nodes is two rows, selected apart, named NODE:PID', () => {
    const a = row({ node: 'billing-1', pid: 4242 });
    const b = row({ node: 'search-1', pid: 4242, user: 'bob' });
    const s = state([a, b], { multiNode: true });
    expect(visibleRows(s).map(rowKey)).toEqual(['billing-1\n4242', 'search-1\n4242']);
    const { effects, state: asked } = drive(s, [ch('j'), ch('K')]);
    expect(renderFrame(asked, PLAIN)[23]).toBe('terminate pid search-1:4242 (bob@app)? y/N');
    expect(drive(asked, [ch('y')]).effects).toEqual([{ kind: 'signal', action: 'terminate', row: b }]);
    expect(effects).toEqual([]);
  });

  it('a resize re-lays the frame and keeps the selection on screen', () => {
    const rows = Array.from({ length: 40 }, () => row());
    let s = drive(
      state(rows),
      Array.from({ length: 35 }, () => ch('j')),
    ).state;
    s = reduce(s, { type: 'resize', columns: 120, rows: 10 }).state;
    const lines = renderFrame(s, PLAIN);
    expectFits(lines, 120, 10);
    expect(lines.filter((l) => l.startsWith('>'))).toEqual([expect.stringContaining(String(rows[35]!.pid))]);
    expect(lines[2]).toContain('application'); // room for every column at 120
  });
});

describe('openTerminal', () => {
  function fake() {
    let written = '';
    const stdout = Object.assign(new PassThrough(), { isTTY: true, columns: 100, rows: 30 });
    stdout.on('data', (d) => (written += d));
    const stdin = Object.assign(new PassThrough(), { isTTY: false });
    const stops: string[] = [];
    const term = openTerminal(
      { stdin: stdin as unknown as NodeJS.ReadStream, stdout: stdout as unknown as NodeJS.WriteStream },
      { key: () => undefined, resize: () => stops.push('resize'), stop: () => stops.push('stop') },
    );
    return { term, stdout, stops, written: () => written };
  }
  const ENTER = '\x1b[?1049h';
  const LEAVE = '\x1b[?25h\x1b[?1049l';

  it('enters the alternate screen, draws each line in place, and leaves it once, on close', async () => {
    const { term, written } = fake();
    expect(term.size()).toEqual({ columns: 100, rows: 30 });
    expect(term.keys).toBe(false);
    term.draw(['first', 'second']);
    term.close();
    term.close();
    term.draw(['after']);
    await new Promise((r) => setImmediate(r));
    expect(written().startsWith(ENTER)).toBe(true);
    expect(written()).toContain('\x1b[1;1H\x1b[2Kfirst\x1b[2;1H\x1b[2Ksecond');
    expect(written().split(LEAVE)).toHaveLength(2);
    expect(written().endsWith(LEAVE)).toBe(true);
  });

  it('SIGINT and SIGTERM stop the view; an uncaught error and process exit restore the screen first', async () => {
    const { term, stdout, stops, written } = fake();
    process.emit('SIGINT');
    process.emit('SIGTERM');
    stdout.emit('resize');
    expect(stops).toEqual(['stop', 'stop', 'resize']);
    process.emit('uncaughtExceptionMonitor', new Error('boom'), 'uncaughtException');
    await new Promise((r) => setImmediate(r));
    expect(written().endsWith(LEAVE)).toBe(true);
    // and nothing is left listening
    process.emit('SIGINT');
    expect(stops).toHaveLength(3);
    expect(process.listeners('exit')).not.toContain(term.close);
    // the 'exit' listener, called as Node would (emitting 'exit' here would reach the test runner's own)
    const before = process.listeners('exit');
    const again = fake();
    for (const l of process.listeners('exit').filter((x) => !before.includes(x))) l(0);
    await new Promise((r) => setImmediate(r));
    expect(again.written().endsWith(LEAVE)).toBe(true);
  });
});
