// Tables that follow the terminal width, met as a responder meets them: the CLI on a real
// pseudo-terminal of 80 and 120 columns, against a real server where a role with a CJK name runs a
// long query under a long application_name. Piped output stays as it was; --wide shows everything.
import { stripVTControlCharacters } from 'node:util';
import pg from 'pg';
import stringWidth from 'string-width';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ident } from '../../src/pg/quote.js';
import { runCli, startOnTerminal } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

const ROLE = '幅テスト_ロール';
// application_name is cut by the server at 63 bytes: this one is 62
const APP = `nightly-export-worker-${'a'.repeat(26)}-end-of-app-id`;
const LONG_QUERY = `SELECT pg_sleep(600) /* ${'x'.repeat(300)} end-of-long-query */`;
const SESSION_HEADS = [
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The lines a terminal shows at the end: color and cursor codes removed, and a line that was
 * redrawn in place (the spinner: carriage return, cursor to column 1, erase) only as it was left.
 */
function visibleLines(screen: string): string[] {
  // eslint-disable-next-line no-control-regex -- ESC [ n G: the cursor to a column (ora's redraw)
  return stripVTControlCharacters(screen.replace(/\x1b\[[0-9]*G/g, '\r'))
    .split('\n')
    .map((l) => l.replace(/\r+$/, '').split('\r').at(-1)!);
}

/** The grid lines of the table whose heading line starts with `heading`: every one as wide as its top border. */
function gridAfter(lines: string[], heading: string): string[] {
  const at = lines.findIndex((l) => l.startsWith(heading));
  expect(at, lines.join('\n')).toBeGreaterThan(0);
  const end = lines.findIndex((l, i) => i > at && l.startsWith('└'));
  return lines.slice(at - 1, end + 1);
}

describe.each(MAJORS)('tables on a terminal, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let pid = 0;

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE ${ident(ROLE)} LOGIN PASSWORD 'pw-wide'`);
    const c: pg.Client = await cl.connectAs(ROLE, 'pw-wide', 'postgres', { application_name: APP });
    pid = (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
    void c.query(LONG_QUERY).catch(() => undefined);
    for (;;) {
      const rows = await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, [pid]);
      if (rows.length) break;
      await sleep(20);
    }
  }, 120_000);

  afterAll(async () => {
    await cl?.destroyAll();
  });

  const onTerminal = async (args: string[], columns: number) => {
    const t = startOnTerminal([...args, '--dsn', cl.dsn()], 60_000, { columns, rows: 24 });
    const code = await t.exited;
    return { code, screen: t.screen(), lines: visibleLines(t.screen()) };
  };

  const fits = (lines: string[], columns: number) => {
    const over = lines.filter((l) => stringWidth(l) > columns);
    expect(over, `lines wider than ${columns} columns:\n${lines.join('\n')}`).toEqual([]);
  };

  it.each([80, 120])(
    'sessions at %i columns: no line wider than the terminal, pid kept, the query cut with an ellipsis',
    async (columns) => {
      const { code, lines, screen } = await onTerminal(['sessions'], columns);
      expect(code, screen).toBe(0);
      fits(lines, columns);
      const grid = gridAfter(lines, '│ pid ');
      expect(new Set(grid.map((l) => stringWidth(l))).size, grid.join('\n')).toBe(1); // the CJK name keeps the grid aligned
      const row = lines.find((l) => l.startsWith(`│ ${pid} `));
      expect(row, screen).toBeDefined();
      expect(row).toContain('SELECT pg_sleep');
      expect(row).toContain('\u2026');
      expect(screen).not.toContain('end-of-long-query');
      expect(lines.some((l) => l.startsWith('not shown (--wide shows them): '))).toBe(true);
    },
  );

  it.each([80, 120])('inspect ROLE at %i columns: no line wider than the terminal, pid kept, the query cut', async (columns) => {
    const { code, lines, screen } = await onTerminal(['inspect', ROLE], columns);
    expect(code, screen).toBe(0);
    expect(screen).toContain(`Role "${ROLE}" (oid`);
    fits(lines, columns);
    const row = lines.find((l) => l.startsWith(`│ ${pid} `));
    expect(row, screen).toBeDefined();
    expect(row).toContain('\u2026');
    expect(screen).not.toContain('end-of-long-query');
    expect(screen).not.toContain(APP);
    // the findings wrap under their own indent instead of running past the edge
    expect(lines.some((l) => l.startsWith('CRITICAL sessions.active'))).toBe(true);
  });

  it('--wide on a terminal shows every column and the whole query and application', async () => {
    const { code, screen } = await onTerminal(['sessions', '--wide'], 80);
    expect(code, screen).toBe(0);
    expect(screen).toContain(LONG_QUERY);
    expect(screen).toContain(APP);
    for (const h of SESSION_HEADS) expect(screen).toContain(` ${h} `);
    expect(screen).not.toContain('not shown');
  });

  it('piped output is not fitted: every column, queries cut at 50 as before; --wide piped has them whole', async () => {
    const r = await runCli(['sessions', '--dsn', cl.dsn()]);
    expect(r.code, r.stderr).toBe(0);
    for (const h of SESSION_HEADS) expect(r.stdout).toContain(` ${h} `);
    expect(r.stdout).toContain(`${LONG_QUERY.slice(0, 49)}\u2026`);
    expect(r.stdout).toContain(`${APP.slice(0, 19)}\u2026`);
    expect(r.stdout).not.toContain('not shown');
    expect(Math.max(...r.stdout.split('\n').map((l) => stringWidth(l)))).toBeGreaterThan(120);

    const wide = await runCli(['sessions', '--dsn', cl.dsn(), '--wide']);
    expect(wide.code, wide.stderr).toBe(0);
    expect(wide.stdout).toContain(LONG_QUERY);
    expect(wide.stdout).toContain(APP);
  });
});
