// The operator's password, as psql asks for it: on a real pseudo-terminal (script(1)) the prompt
// appears, the typed password connects and is never shown (not on the screen, not in the --json
// report, not in --debug output), and it is asked once for every connection of the run to that
// server and user; -w never asks; without a terminal there is no prompt and no hang.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startOnTerminal, type TerminalRun } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 'Typed-Secret-4711';
// the prompt's help text; a long prompt line is wrapped at the terminal's width, inside a word too
const PROMPT = '[input is masked]';
const unwrapped = (screen: string) => screen.replace(/\r?\n/g, '');

/** Wait for the prompt, then type `text` and Enter; returns the screen's length at that moment. */
async function answer(t: TerminalRun, text: string): Promise<number> {
  await waitFor(async () => unwrapped(t.screen()).includes(PROMPT), 30_000, 'the password prompt').catch((err: Error) => {
    throw new Error(`${err.message}; the screen:\n${t.screen()}`);
  });
  const at = t.screen().length;
  t.type(`${text}\r`);
  return at;
}

describe.each(MAJORS)('password prompt on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  // TCP to 127.0.0.1 is scram-sha-256; PGPASSWORD is unset (BASE_ENV) and there is no password in the flags
  let tcp: string[] = [];

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE opsadmin SUPERUSER LOGIN PASSWORD '${SECRET}'`);
    await cl.sql('CREATE ROLE mallory LOGIN');
    // mallory's objects in two more databases: inspect connects to each of them as well
    for (const db of ['app1', 'app2']) {
      await cl.sql(`CREATE DATABASE ${db}`);
      const c = await cl.connectAs('postgres', cl.password, db);
      await c.query('CREATE TABLE t (v int); ALTER TABLE t OWNER TO mallory');
    }
    tcp = ['-h', '127.0.0.1', '-p', String(cl.port), '-U', 'opsadmin', '-d', 'postgres'];
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('on a terminal: asks once, masked; the typed password connects every session of the run and is never shown', async () => {
    const t = startOnTerminal(['inspect', 'mallory', '--json', ...tcp]);
    const at = await answer(t, SECRET);
    // typed once: a second prompt would wait for an answer that never comes, and the run would not end
    expect(await t.exited, t.screen()).toBe(0);
    const screen = t.screen();
    expect(unwrapped(screen.slice(0, at))).toContain('Password for user opsadmin (127.0.0.1:');
    // the report (stdout shares the terminal) came from app1 and app2 too, with no second prompt
    expect(screen).toContain('"verdict"');
    expect(screen).toMatch(/app1[\s\S]*app2|app2[\s\S]*app1/);
    expect(unwrapped(screen)).not.toContain(SECRET);
  });

  it('a wrong password typed: the server refuses it (28P01, exit 2), and --debug does not show it', async () => {
    const wrong = 'Wrong-Guess-0815';
    const t = startOnTerminal(['sessions', '--debug', ...tcp]);
    await answer(t, wrong);
    expect(await t.exited, t.screen()).toBe(2);
    expect(t.screen()).toContain('password authentication failed for user "opsadmin"');
    expect(unwrapped(t.screen())).not.toContain(wrong);
  });

  it('Ctrl+C at the prompt: exit 2, nothing connected, the prompt closed', async () => {
    const t = startOnTerminal(['sessions', ...tcp]);
    await answer(t, '\x03');
    expect(await t.exited, t.screen()).toBe(2);
    expect(unwrapped(t.screen())).toContain(
      `could not connect to opsadmin@127.0.0.1:${cl.port}/postgres: no password entered (the prompt was cancelled)`,
    );
  });

  it('-W asks before connecting, even where the server would not ask (the trusted socket)', async () => {
    const t = startOnTerminal(['sessions', '--json', '-W', '-h', cl.socketDir, '-p', String(cl.port), '-U', 'postgres', '-d', 'postgres']);
    await answer(t, 'unused-here');
    expect(await t.exited, t.screen()).toBe(0);
    expect(unwrapped(t.screen())).toContain(`Password for user postgres (${cl.socketDir}:${cl.port}):`);
    expect(unwrapped(t.screen())).not.toContain('unused-here');
  });

  it('-w on a terminal: no prompt, exit 2 at once with the reason and a hint', async () => {
    const t = startOnTerminal(['sessions', '-w', ...tcp], 20_000);
    expect(await t.exited, t.screen()).toBe(2);
    expect(t.screen()).toContain('the server asked for a password and none was supplied (-w/--no-password: never asked)');
    expect(t.screen()).toContain('hint: put it in ~/.pgpass');
    expect(unwrapped(t.screen())).not.toContain(PROMPT);
  });

  it('without a terminal: no prompt, no hang; one line, exit 2, a hint away from PGPASSWORD', async () => {
    for (const flags of [[], ['-W']]) {
      const started = Date.now();
      const r = await runCli(['inspect', 'mallory', '--json', ...flags, ...tcp], {}, { timeoutMs: 20_000 });
      expect(Date.now() - started, r.stderr).toBeLessThan(5_000);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      const [error, hint, ...rest] = r.stderr.trimEnd().split('\n');
      expect(rest).toEqual([]);
      expect(error).toBe(
        `pgrevoke: error: could not connect to opsadmin@127.0.0.1:${cl.port}/postgres: ${
          flags.length
            ? '-W/--password asks for the password on a terminal, and stdin or stderr is not one'
            : 'the server asked for a password and none was supplied (there is no terminal to ask on)'
        } [SQLSTATE 28P01]`,
      );
      expect(hint).toMatch(/^hint: put it in ~\/\.pgpass .* or a service file .*-W asks before connecting.*not PGPASSWORD/);
      expect(unwrapped(r.stderr)).not.toContain(PROMPT);
    }
  });
});
