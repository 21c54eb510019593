// Tables that follow the terminal width: the pure fitter (src/report/table-fit.ts), the one table
// helper over it (src/report/format.ts), the drop orders the renderers declare, and shownName.
import { PassThrough } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { Chalk } from 'chalk';
import stringWidth from 'string-width';
import { afterEach, describe, expect, it } from 'vitest';
import { Context } from '../../src/context.js';
import { shownName, table, type Column } from '../../src/report/format.js';
import { setTableLayout, type TableLayout } from '../../src/report/layout.js';
import { renderSessions } from '../../src/report/sessions.js';
import { fitColumns, lineWidth, type FitColumn } from '../../src/report/table-fit.js';
import type { ListedSession, SessionsDoc } from '../../src/sessions/list.js';

const plain = new Chalk({ level: 0 });
const colored = new Chalk({ level: 1 });
const term = (columns: number): TableLayout => ({ columns, wide: false });
const PIPED: TableLayout = { columns: null, wide: false };
const WIDE: TableLayout = { columns: 80, wide: true };
const widths = (text: string) => text.split('\n').map((l) => stringWidth(l));

const LONG_QUERY = `SELECT * FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.email LIKE '%@example.com' /* ${'x'.repeat(300)} end-of-long-query */`;
const LONG_APP = `exfiltration-worker-${'y'.repeat(80)}-end-of-app`;

function session(over: Partial<ListedSession>): ListedSession {
  return {
    pid: 25776,
    database: 'postgres',
    user: 'mallory',
    userOid: 16384,
    clientAddr: '127.0.0.1',
    clientPort: 55834,
    applicationName: 'psql',
    backendType: 'client backend',
    state: 'idle in transaction',
    backendStart: '2026-11-23 21:41:03.123+00',
    xactStart: '2026-11-23 21:41:03.200+00',
    stateChange: '2026-11-23 21:41:04+00',
    waitEventType: 'Client',
    waitEvent: 'ClientRead',
    queryId: '-4212468270458218045',
    query: 'SELECT 1',
    idleSeconds: 12.5,
    xactAgeSeconds: 13,
    hidden: false,
    ...over,
  };
}

const DOC: SessionsDoc = {
  schemaVersion: 1,
  sessions: [
    session({ query: LONG_QUERY, applicationName: LONG_APP }),
    session({ pid: 25779, user: '管理者ユーザー', applicationName: '同期サービス🚀', query: 'SELECT 名前 FROM 顧客' }),
    session({ pid: 25781, user: 'we"ird user', state: 'active', waitEventType: null, waitEvent: null, query: 'SELECT\n  pg_sleep(600)' }),
  ],
  hiddenBackends: [],
};

describe('fitColumns', () => {
  const cols: FitColumn[] = [
    { natural: 5 }, // pid
    { natural: 30, min: 8 }, // application
    { natural: 19, drop: 2 }, // started
    { natural: 17, min: 10, drop: 1 }, // wait
    { natural: 200, min: 20, drop: 3 }, // query
  ];

  it('leaves a table that fits as it is', () => {
    expect(fitColumns(cols, 1000)).toEqual({ keep: [0, 1, 2, 3, 4], widths: [5, 30, 19, 17, 200] });
  });

  it.each([80, 120])('at %i columns the line fits, and the widest text is cut first', (width) => {
    const fit = fitColumns(cols, width);
    expect(lineWidth(fit.widths)).toBeLessThanOrEqual(width);
    expect(fit.keep).toContain(0);
    // every column not cut keeps its natural width; the cut ones never go below their floor
    fit.keep.forEach((k, j) => {
      const c = cols[k]!;
      expect(fit.widths[j]).toBeLessThanOrEqual(c.natural);
      expect(fit.widths[j]).toBeGreaterThanOrEqual(c.min === undefined ? c.natural : Math.min(c.min, c.natural));
    });
  });

  it('cuts evenly from the widest down and uses the whole width', () => {
    // 271 columns of content and 16 of frame; at 120 only the query is cut, to what is left
    const fit = fitColumns(cols, 120);
    expect(fit.keep).toEqual([0, 1, 2, 3, 4]);
    expect(fit.widths).toEqual([5, 30, 19, 17, 120 - 16 - 5 - 30 - 19 - 17]);
    expect(lineWidth(fit.widths)).toBe(120);
    // at 90 the query stops at its floor (20) and application and wait share the rest evenly
    const narrower = fitColumns(cols, 90);
    expect(narrower.widths).toEqual([5, 15, 19, 15, 20]);
    expect(lineWidth(narrower.widths)).toBe(90);
  });

  it('drops columns in their drop order, only once cutting is not enough, and widens the rest again', () => {
    const at = (w: number) => fitColumns(cols, w).keep;
    expect(at(90)).toEqual([0, 1, 2, 3, 4]);
    // floors: 5 + 8 + 19 + 10 + 20 = 62 + 16 = 78: at 77 the wait column (drop 1) goes first
    expect(at(78)).toEqual([0, 1, 2, 3, 4]);
    expect(at(77)).toEqual([0, 1, 2, 4]);
    const after = fitColumns(cols, 77);
    expect(lineWidth(after.widths)).toBe(77); // what wait left is the cut columns' again
    // then started (drop 2: floors 5 + 8 + 19 + 20 + 13 = 65), then query (drop 3: 5 + 8 + 20 + 10 = 43)
    expect(at(65)).toEqual([0, 1, 2, 4]);
    expect(at(64)).toEqual([0, 1, 4]);
    expect(at(43)).toEqual([0, 1, 4]);
    expect(at(42)).toEqual([0, 1]);
    // pid and application are never dropped, even when they do not fit either
    expect(at(10)).toEqual([0, 1]);
  });

  it('ties in the drop order go from the right', () => {
    const tie: FitColumn[] = [{ natural: 5 }, { natural: 20, drop: 1 }, { natural: 20, drop: 1 }];
    expect(fitColumns(tie, 40).keep).toEqual([0, 1]);
  });
});

describe('table() on a terminal', () => {
  const COLS: Column[] = [
    { head: 'pid' },
    { head: 'user', shrink: 8 },
    { head: 'application', shrink: 10, cap: 20, drop: 2 },
    { head: 'backend type', drop: 1 },
    { head: 'query', shrink: 20, cap: 50, drop: 3 },
  ];
  const rows = DOC.sessions.map((s) => [s.pid, s.user, s.applicationName, s.backendType, s.query]);

  it.each([80, 120])('at %i columns every line fits, cut text ends in an ellipsis, and the grid stays aligned', (width) => {
    for (const c of [plain, colored]) {
      const out = table(COLS, rows, c, term(width));
      const lines = out.split('\n');
      for (const w of widths(out)) expect(w).toBeLessThanOrEqual(width);
      // every line of the grid is as wide as the top border: CJK and emoji counted as two columns
      const grid = lines.filter((l) => /^[┌│├└]/.test(c === plain ? l : stripVTControlCharacters(l)));
      expect(new Set(grid.map((l) => stringWidth(l))).size).toBe(1);
      expect(out).toContain('\u2026');
      expect(out).toContain('25776');
      expect(out).toContain('管理者');
      expect(out).not.toContain('end-of-long-query');
    }
  });

  it('a query with newlines is one line per row on a terminal', () => {
    const out = table(COLS, rows, plain, term(120));
    expect(out).toContain('SELECT pg_sleep(600)');
    expect(out.split('\n').filter((l) => l.startsWith('│'))).toHaveLength(4); // heading + 3 rows
  });

  it('says which columns it dropped, and --wide shows them', () => {
    const out = table(COLS, rows, plain, term(60));
    expect(out).not.toContain('backend type │');
    expect(out.split('\n').at(-1)).toBe('not shown (--wide shows them): backend type');
  });

  it('--wide shows every column and every value whole, one line per row', () => {
    const out = table(COLS, rows, plain, WIDE);
    expect(out).toContain(LONG_QUERY);
    expect(out).toContain(LONG_APP);
    expect(out).toContain('backend type');
    expect(out).not.toContain('not shown');
    expect(out.split('\n').filter((l) => l.startsWith('│'))).toHaveLength(4);
  });

  it('piped, the table is as it always was: every column, capped columns cut at their cap', () => {
    const out = table(COLS, rows, plain, PIPED);
    expect(out).toContain(`${LONG_QUERY.slice(0, 49)}\u2026`);
    expect(out).toContain(`${LONG_APP.slice(0, 19)}\u2026`);
    expect(out).toContain('SELECT pg_sleep(600)');
    expect(out).not.toContain('not shown');
    // string headings and a column without cap or shrink are left exactly as given
    expect(table(['a', 'b'], [['x\ny', 1]], plain, term(80))).toBe(table(['a', 'b'], [['x\ny', 1]], plain, PIPED));
  });

  it('a cut path keeps its file name (cut in the middle)', () => {
    const file = `/var/lib/pgrevoke/${'d'.repeat(60)}/cutoff-2026-11-23T21-41-03Z.json`;
    const out = table(
      [{ head: 'started' }, { head: 'record', shrink: 24, cut: 'middle' }],
      [['2026-11-23T21:41:03Z', file]],
      plain,
      term(60),
    );
    expect(out).toContain('.json');
    expect(out).toContain('/var/lib');
    expect(out).toContain('\u2026');
  });
});

describe('the sessions table follows its documented drop order', () => {
  // docs/output.md "Tables on a terminal", and the comment beside SESSION_COLUMNS in src/report/sessions.ts
  const ORDER = [
    'query_id',
    'backend type',
    'wait',
    'started',
    'xact age',
    'application',
    'idle for',
    'client',
    'database',
    'state',
    'query',
  ];
  const HEADS = [
    'pid',
    'user',
    'database',
    'client',
    'application',
    'backend type',
    'started',
    'idle for',
    'state',
    'xact age',
    'wait',
    'query_id',
    'query',
  ];
  afterEach(() => setTableLayout(PIPED));

  const shownAt = (width: number) => {
    setTableLayout(term(width));
    const heading = renderSessions(DOC, plain).split('\n')[2]!;
    return HEADS.filter((h) => heading.includes(` ${h} `));
  };

  it.each([80, 120])('at %i columns: every line fits and pid is kept', (width) => {
    setTableLayout(term(width));
    const out = renderSessions(DOC, plain);
    for (const w of widths(out)) expect(w).toBeLessThanOrEqual(width);
    expect(shownAt(width)).toContain('pid');
    expect(out).toContain('25776');
  });

  it('narrowing the terminal drops columns exactly in that order', () => {
    const dropped: string[] = [];
    for (let width = 300; width >= 30; width--) {
      const shown = shownAt(width);
      for (const h of HEADS) if (!shown.includes(h) && !dropped.includes(h)) dropped.push(h);
    }
    expect(dropped).toEqual(ORDER);
    expect(shownAt(30)).toEqual(['pid', 'user']);
  });
});

describe('the width tables fit, decided by the output context', () => {
  const tty = (columns: number) => Object.assign(new PassThrough(), { isTTY: true, columns });
  afterEach(() => setTableLayout(PIPED));

  it("is the terminal's, or COLUMNS when that is a positive integer (as psql); null when piped or --json", () => {
    expect(new Context({}, tty(120), tty(120), {}).columns).toBe(120);
    expect(new Context({}, tty(120), tty(120), { COLUMNS: '100' }).columns).toBe(100);
    expect(new Context({}, tty(120), tty(120), { COLUMNS: 'wide' }).columns).toBe(120);
    expect(new Context({}, tty(120), tty(120), { COLUMNS: '0' }).columns).toBe(120);
    expect(new Context({}, tty(0), tty(0), {}).columns).toBeNull();
    expect(new Context({}, new PassThrough(), tty(120), { COLUMNS: '100' }).columns).toBeNull();
    expect(new Context({ json: true }, tty(120), tty(120), {}).columns).toBeNull();
  });

  it('is what table() fits, and --wide turns fitting off', () => {
    const rows = [[1, LONG_QUERY]];
    const cols: Column[] = [{ head: 'pid' }, { head: 'query', shrink: 20, cap: 50 }];
    new Context({}, tty(60), tty(60), {});
    expect(Math.max(...widths(table(cols, rows, plain)))).toBe(60);
    expect(new Context({ wide: true }, tty(60), tty(60), {}).wide).toBe(true);
    expect(table(cols, rows, plain)).toContain(LONG_QUERY);
    new Context({}, new PassThrough(), tty(60), {});
    expect(table(cols, rows, plain)).toContain(`${LONG_QUERY.slice(0, 49)}\u2026`);
  });
});

describe('shownName', () => {
  it.each([
    ['mallory', '"mallory"'],
    ['we"ird user', '"we""ird user"'],
    ['Bob', '"Bob"'],
    ['a\\b', '"a\\b"'],
    ['管理者', '"管理者"'],
    ['a\nb', 'U&"a\\000Ab"'],
    ['x\\"\x1b[2J', 'U&"x\\\\""\\001B[2J"'],
    ['evil\u202eexe', 'U&"evil\\202Eexe"'],
  ])('%j is shown as %s', (name, shown) => expect(shownName(name)).toBe(shown));
});
