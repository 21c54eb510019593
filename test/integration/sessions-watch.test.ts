// `sessions --watch` as a person meets it: on a real pseudo-terminal of 80x24, its screen read through a
// terminal emulator, driven by keystrokes, against a real server whose sessions are checked in
// pg_stat_activity.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOnTerminal } from '../helpers/cli.js';
import { canQuery, MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { Screen } from '../helpers/screen.js';

const APP = 'watch-test';
const ROLES = ['alice', 'bob', 'carol'] as const;

/** The session rows on the screen: selection mark, pid, user. */
const rowsOn = (lines: string[]) =>
  lines.flatMap((l) => {
    const m = /^([> ]) +(\d+) (\S+)/.exec(l);
    return m ? [{ selected: m[1] === '>', pid: Number(m[2]), user: m[3]! }] : [];
  });
const selectedOn = (lines: string[]) => rowsOn(lines).find((r) => r.selected)?.pid;
const last = (lines: string[]) => lines[lines.length - 1]!;

describe.each(MAJORS)('sessions --watch on a terminal, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';
  const clients: Record<string, pg.Client> = {};
  const pids: Record<string, number> = {};

  beforeAll(async () => {
    cl = await startCluster(major);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-watch-'));
    for (const role of ROLES) {
      await cl.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-${role}'`);
      clients[role] = await cl.connectAs(role, `pw-${role}`, 'postgres', { application_name: APP });
      pids[role] = (await clients[role].query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
    }
  }, 120_000);

  afterAll(async () => {
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const alive = async () =>
    (await cl.sql<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[]) ORDER BY pid', [Object.values(pids)])).map(
      (r) => r.pid,
    );

  it('80x24: header pinned, rows fit, j/k select, K y terminates exactly that pid, C y cancels, / filters, q restores (exit 0)', async () => {
    const audit = path.join(dir, 'audit.jsonl');
    const args = ['sessions', '--dsn', cl.dsn(), '--application', APP, '--sort', 'pid', '--watch', '0.3', '--audit-log', audit];
    const t = startOnTerminal(args, 90_000, { columns: 80, rows: 24 });
    const s = new Screen(t, 80, 24);
    const byPid = [...ROLES].sort((a, b) => pids[a]! - pids[b]!);

    let lines = await s.until('the three sessions', (l) => rowsOn(l).length === 3);
    expect(s.alternate).toBe(true);
    expect(lines[0]).toMatch(
      new RegExp(`^pgrevoke sessions  PostgreSQL ${major}\\.\\d+, postgres@127\\.0\\.0\\.1:${cl.port}\\b.*  \\d\\d:\\d\\d:\\d\\d UTC$`),
    );
    expect(lines[1]).toMatch(/^3 sessions: 3 idle {3}sort: pid {3}every 0\.3s/);
    expect(rowsOn(lines).map((r) => [r.pid, r.user])).toEqual(byPid.map((r) => [pids[r], r]));
    expect(last(lines)).toContain('K terminate');
    // frames later (the clock moves): still the header on the first line and the keys on the last, nothing scrolled
    const clock = lines[0];
    lines = await s.until('a later frame', (l) => l[0] !== clock);
    expect(lines[0]).toMatch(/^pgrevoke sessions {2}/);
    expect(last(lines)).toContain('q quit');
    expect(lines.every((l) => l.length <= 80)).toBe(true);
    expect(s.scrollback).toBe(0);

    expect(selectedOn(lines)).toBe(pids[byPid[0]!]);
    t.type('j');
    await s.until('j selects the second row', (l) => selectedOn(l) === pids[byPid[1]!]);
    t.type('k');
    await s.until('k selects the first row', (l) => selectedOn(l) === pids[byPid[0]!]);
    t.type('jj');
    await s.until('the third row', (l) => selectedOn(l) === pids[byPid[2]!]);
    t.type('k');
    const victim = byPid[1]!;
    await s.until('the middle row', (l) => selectedOn(l) === pids[victim]);

    t.type('K');
    await s.until('the confirmation', (l) => last(l) === `terminate pid ${pids[victim]} (${victim}@postgres)? y/N`);
    t.type('y');
    await s.until('the outcome', (l) => last(l).startsWith(`ok terminated pid ${pids[victim]} (${victim}@postgres)`));
    expect(await alive()).toEqual(byPid.filter((r) => r !== victim).map((r) => pids[r]));
    await s.until('two rows left', (l) => rowsOn(l).length === 2);

    // C on a session running a query: the query ends, the session stays
    const runner = byPid.filter((r) => r !== victim)[1]!;
    const query = clients[runner]!.query('SELECT pg_sleep(600)').then(
      () => 'finished',
      (err: { code?: string }) => err.code,
    );
    lines = await s.until('the query running', (l) => /1 active/.test(l[1]!));
    if (selectedOn(lines) !== pids[runner]) t.type('j');
    await s.until('its row selected', (l) => selectedOn(l) === pids[runner]);
    t.type('C');
    await s.until('the cancel confirmation', (l) => last(l) === `cancel the query of pid ${pids[runner]} (${runner}@postgres)? y/N`);
    t.type('y');
    await s.until('the cancel outcome', (l) => last(l).startsWith(`ok cancelled the query of pid ${pids[runner]}`));
    expect(await query).toBe('57014');
    expect(await canQuery(clients[runner]!)).toBe(true);
    expect(await alive()).toEqual(byPid.filter((r) => r !== victim).map((r) => pids[r]));

    // / filters by user (Enter applies), Esc clears
    const kept = byPid.find((r) => r !== victim && r !== runner)!;
    t.type(`/${kept}`);
    await s.until('the filter being typed', (l) => last(l).startsWith(`filter by user or database: ${kept}_`));
    t.type('\r');
    lines = await s.until('the filtered rows', (l) => rowsOn(l).length === 1);
    expect(rowsOn(lines)[0]!.pid).toBe(pids[kept]);
    expect(lines[1]).toContain(`filter "${kept}": 1 shown`);
    t.type('\x1b');
    await s.until('the filter cleared', (l) => rowsOn(l).length === 2);

    t.type('q');
    expect(await t.exited).toBe(0);
    await s.lines();
    expect(s.alternate).toBe(false);
    expect(s.scrollback).toBe(0);
    expect(t.screen()).toContain('\x1b[?25h\x1b[?1049l');

    // the same audit lines as pgrevoke kill --audit-log
    const entries = (await fs.readFile(audit, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; reason: string; target: string; result: string; session: { pid: number } });
    expect(entries.map((e) => [e.action, e.reason, e.target, e.result, e.session.pid])).toEqual([
      ['terminate', 'admin_kill', victim, 'done', pids[victim]],
      ['cancel', 'admin_kill', runner, 'done', pids[runner]],
    ]);
  });

  it('a resize redraws at the new size; SIGTERM restores the screen and exits 0', async () => {
    const t = startOnTerminal(['sessions', '--dsn', cl.dsn(), '--application', APP, '--watch', '0.3'], 60_000, { columns: 80, rows: 24 });
    const s = new Screen(t, 80, 24);
    let lines = await s.until('the sessions', (l) => rowsOn(l).length > 0);
    expect(lines[2]).not.toContain('application');
    await s.resize(120, 30);
    lines = await s.until('a frame at 120x30', (l) => l.length === 30 && last(l).includes('K terminate'));
    expect(lines[0]).toMatch(/^pgrevoke sessions {2}/);
    expect(lines[2]).toContain('application'); // room for every column now
    t.signal('SIGTERM');
    expect(await t.exited).toBe(0);
    await s.lines();
    expect(s.alternate).toBe(false);
  });
});
