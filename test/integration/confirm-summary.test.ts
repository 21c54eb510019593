// cutoff's confirmation and progress as an operator meets them on an 80x24 terminal: the summary of
// what will happen and the question on one screen, `s` for the SQL, --show-sql; then each step a
// spinner that becomes its one result line, not repeated by the report.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOnTerminal, type TerminalRun } from '../helpers/cli.js';
import { lockWaiters, MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { Screen } from '../helpers/screen.js';
import { waitFor } from '../helpers/wait.js';

const SIZE = { columns: 80, rows: 24 };
// asked (?), then answered (\u2714)
const QUESTION = /^[?\u2714] Apply playbook compromised-credential to "[a-z_]+" now\? \(y\/N\)/;

/** The CLI on an 80x24 terminal; `screen` shows its 24 rows, `all` everything it printed (an emulator too tall to scroll). */
function onTerminal(args: string[]): { t: TerminalRun; screen: Screen; all: Screen } {
  const t = startOnTerminal(args, 90_000, SIZE);
  return { t, screen: new Screen(t, SIZE.columns, SIZE.rows), all: new Screen(t, SIZE.columns, 2000) };
}

const questions = (lines: string[]) => lines.filter((l) => QUESTION.test(l)).length;

interface Step {
  action: string;
  status: string;
  startedAt: string | null;
}

/**
 * Each step that ran is one result line (a status symbol, its status, its action), and is neither a
 * plain progress line nor an entry of the report; a step that never started is one report entry.
 */
function expectOneLineEach(lines: string[], steps: Step[]): void {
  const text = lines.join('\n');
  for (const st of steps) {
    const label = `${st.status.toUpperCase()} +${st.action}\\b`;
    const results = lines.filter((l) => new RegExp(`^[\u2713\u2717\u2013] ${label}`).test(l));
    const entries = lines.filter((l) => new RegExp(`^${label}`).test(l));
    expect(results, text).toHaveLength(st.startedAt === null ? 0 : 1);
    // one line: its detail is on it, not below it (only a failure's is)
    if (results.length && st.status !== 'failed') expect(lines[lines.indexOf(results[0]!) + 1], text).not.toMatch(/^ {6}\S/);
    expect(entries, text).toHaveLength(st.startedAt === null ? 1 : 0);
    expect(lines.some((l) => l.startsWith(`pgrevoke: ${st.action}`))).toBe(false);
  }
  // no spinner frame is left on the screen
  expect(
    lines.some((l) => /^[\u2800-\u28ff]/.test(l)),
    text,
  ).toBe(false);
}

describe.each(MAJORS)('the confirmation and the live steps on an 80x24 terminal, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-confirm-'));
  const pidOf = async (c: pg.Client) => (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
  const alive = async (pid: number) => (await cl.sql('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).length > 0;
  const canLogin = async (role: string) =>
    (await cl.sql<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [role]))[0]!.l;
  const prepared = async (gid: string) => (await cl.sql('SELECT 1 FROM pg_prepared_xacts WHERE gid = $1', [gid])).length > 0;

  /**
   * `role` with two sessions, one running a long pg_sleep and one idle in a transaction holding row
   * `row` of accounts; a prepared transaction of the role (another row); a bystander (postgres)
   * waiting for the held row.
   */
  const stage = async (role: string, row: number) => {
    await cl.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
    const sleeper = await cl.connectAs(role, 'pw');
    const sleeperPid = await pidOf(sleeper);
    const sleeping = sleeper.query('SELECT pg_sleep(600)').catch(() => undefined);
    const holder = await cl.connectAs(role, 'pw');
    const holderPid = await pidOf(holder);
    await holder.query('BEGIN');
    await holder.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [row]);
    const px = await cl.connectAs(role, 'pw');
    await px.query('BEGIN');
    await px.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [row + 1]);
    await px.query(`PREPARE TRANSACTION '${role}-stash'`);
    await px.end();
    const bystander = await cl.connectAs('postgres', cl.password);
    const bystanderPid = await pidOf(bystander);
    const released = bystander.query(`UPDATE accounts SET balance = 0 WHERE id = ${row}`).then(
      () => true,
      () => false,
    );
    await waitFor(
      async () => (await lockWaiters(cl, `UPDATE accounts SET balance = 0 WHERE id = ${row}`)) === 1,
      20_000,
      'the bystander to wait',
    );
    await waitFor(
      async () => (await cl.sql(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, [sleeperPid])).length > 0,
      20_000,
      'pg_sleep to run',
    );
    return { sleeperPid, holderPid, bystanderPid, released, sleeping };
  };

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql('CREATE TABLE accounts (id int PRIMARY KEY, balance int)');
    await cl.sql('INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g');
    await cl.sql('GRANT ALL ON accounts TO PUBLIC');
  });

  afterAll(async () => {
    for (const { gid } of await cl.sql<{ gid: string }>('SELECT gid FROM pg_prepared_xacts')) await cl.sql(`ROLLBACK PREPARED '${gid}'`);
    await cl?.destroyAll();
  });

  it('the summary and the question fit on one screen with the right pids; s shows the SQL and asks again; n changes nothing', async () => {
    const s = await stage('conf_n', 1);
    const { t, screen, all } = onTerminal(['cutoff', 'conf_n', '--dsn', cl.dsn()]);
    const first = await screen.until('the question', (l) => questions(l) === 1, 30_000);
    const shown = first.join('\n');
    // the whole summary is on the 24 rows, from its first line down to the question and its choices
    expect(shown).toMatch(new RegExp(`^Cutoff "conf_n" on \\S+ \\(PostgreSQL ${major}\\)$`, 'm'));
    expect(shown).toMatch(/^playbook compromised-credential, as postgres \(superuser\); nothing changed yet$/m);
    expect(shown).toContain(`Terminate 2 sessions: pids ${s.sleeperPid}, ${s.holderPid}`);
    expect(shown).toMatch(new RegExp(`^ +${s.sleeperPid} +conf_n +127\\.0\\.0\\.1:\\d+ +active +SELECT pg_sleep\\(600\\)$`, 'm'));
    expect(shown).toMatch(new RegExp(`^ +${s.holderPid} +conf_n +127\\.0\\.0\\.1:\\d+ +in xact +UPDATE accounts`, 'm'));
    expect(shown).toMatch(new RegExp(`longest-running query cut short: pid ${s.sleeperPid}, [\\d.]+s: SELECT pg_sleep\\(600\\)`));
    expect(shown).toContain('Hidden backends now: none');
    expect(shown).toContain(`Release 1 blocked session: ${s.bystanderPid} (postgres) on pid ${s.holderPid}`);
    expect(shown).toContain(`Roll back 1 prepared transaction: 'conf_n-stash' in "postgres"`);
    expect(shown).toContain(`Edit ${cl.hbaFile}: reject lines on top, reload`);
    expect(shown).toContain('  s) show the full SQL, then ask again');
    expect(shown).not.toContain('ALTER ROLE');

    t.type('s\r');
    const again = await all.until('the question again', (l) => questions(l) === 2, 20_000);
    const sqlAt = again.findIndex((l) => l.includes('ALTER ROLE "conf_n" NOLOGIN CONNECTION LIMIT 0;'));
    expect(sqlAt, again.join('\n')).toBeGreaterThan(again.findIndex((l) => QUESTION.test(l)));
    expect(again.findLastIndex((l) => QUESTION.test(l))).toBeGreaterThan(sqlAt);
    expect(again.join('\n')).toContain(`ROLLBACK PREPARED 'conf_n-stash';`);

    t.type('n\r');
    expect(await t.exited, t.screen()).toBe(2);
    expect((await screen.lines()).join('\n')).toContain('pgrevoke: not confirmed; nothing was changed');
    expect(await canLogin('conf_n')).toBe(true);
    expect(await alive(s.sleeperPid)).toBe(true);
    expect(await alive(s.holderPid)).toBe(true);
    expect(await prepared('conf_n-stash')).toBe(true);
    expect(await lockWaiters(cl, 'UPDATE accounts SET balance = 0 WHERE id = 1')).toBe(1);
  });

  it('y cuts off: sessions ended, the prepared transaction rolled back, the bystander released; each step one result line', async () => {
    const s = await stage('conf_y', 4);
    const report = path.join(dir, 'conf_y.json');
    const { t, screen, all } = onTerminal(['cutoff', 'conf_y', '--report', report, '--dsn', cl.dsn()]);
    await screen.until('the question', (l) => questions(l) === 1, 30_000);
    t.type('y\r');
    expect(await t.exited, t.screen()).toBe(0);
    expect(await canLogin('conf_y')).toBe(false);
    expect(await alive(s.sleeperPid)).toBe(false);
    expect(await alive(s.holderPid)).toBe(false);
    expect(await prepared('conf_y-stash')).toBe(false);
    expect(await s.released).toBe(true);
    expectOneLineEach(await all.lines(), (JSON.parse(readFileSync(report, 'utf8')) as { steps: Step[] }).steps);
  });

  it('--show-sql prints every step with its SQL above the summary, which still ends the screen with the question', async () => {
    await cl.sql(`CREATE ROLE conf_sql LOGIN PASSWORD 'pw'`);
    const c = await cl.connectAs('conf_sql', 'pw');
    const pid = await pidOf(c);
    const { t, screen, all } = onTerminal(['cutoff', 'conf_sql', '--show-sql', '--dsn', cl.dsn()]);
    const visible = (await screen.until('the question', (l) => questions(l) === 1, 30_000)).join('\n');
    expect(visible).toMatch(/^Cutoff "conf_sql" on /m);
    expect(visible).toContain(`Terminate 1 session: pids ${pid}`);
    const lines = await all.lines();
    const plan = lines.findIndex((l) => l.startsWith('Cutoff plan compromised-credential on '));
    const sql = lines.findIndex((l) => l.includes('ALTER ROLE "conf_sql" NOLOGIN CONNECTION LIMIT 0;'));
    const summary = lines.findIndex((l) => l.startsWith('Cutoff "conf_sql" on '));
    expect(plan, lines.join('\n')).toBeGreaterThanOrEqual(0);
    expect(sql).toBeGreaterThan(plan);
    expect(summary).toBeGreaterThan(sql);
    t.type('n\r');
    expect(await t.exited).toBe(2);
    expect(await alive(pid)).toBe(true);
  });

  it('with --yes on a terminal each step is a spinner that becomes one result line, and the report does not list the steps again', async () => {
    await cl.sql(`CREATE ROLE conf_live LOGIN PASSWORD 'pw'`);
    const c = await cl.connectAs('conf_live', 'pw');
    const pid = await pidOf(c);
    const report = path.join(dir, 'conf_live.json');
    const { t, all } = onTerminal(['cutoff', 'conf_live', '--yes', '--report', report, '--dsn', cl.dsn()]);
    expect(await t.exited, t.screen()).toBe(0);
    expect(await alive(pid)).toBe(false);
    const lines = await all.lines();
    expectOneLineEach(lines, (JSON.parse(readFileSync(report, 'utf8')) as { steps: Step[] }).steps);
    // the report follows the step lines: its heading (which wraps at 80 columns), then its sections
    expect(lines.findIndex((l) => l.startsWith('Cutoff "conf_live" on '))).toBeGreaterThan(
      lines.findIndex((l) => /^\u2713 DONE +verify\b/.test(l)),
    );
    expect(lines).toContain('exit 0: contained and verified');
  });
});
