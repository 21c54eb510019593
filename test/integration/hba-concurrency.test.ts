// pg_hba.conf edits that two operators (or a cutoff and a restore) cannot lose, on real servers via
// the CLI: concurrent cutoffs of different roles, a restore racing a cutoff, a server lock held from
// "another host", a SIGKILLed holder of the local lock, a symlinked pg_hba.conf, and backups.
import { spawn } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HBA_LOCK_KEY } from '../../src/playbook/hba-lock.js';
import { replaceFile } from '../../src/playbook/hba-file.js';
import { jsonDoc, runCli, startCli, type CliResult } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const HBA = ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256'].join('\n') + '\n';
const ROUNDS = 20;
/** Rounds of operators in different databases (each with a state directory of its own: another OS user or host). */
const CROSS_ROUNDS = 12;
const DIST_LOCK = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/playbook/hba-lock.js');

interface Step {
  action: string;
  status: string;
  detail: string | null;
  backup?: string;
  written?: string;
}
interface CutoffDoc {
  steps: Step[];
  hba: { file: string; written: string; backup: string | null; lines: string[] } | null;
}
interface RestoreDoc {
  steps: Step[];
}

const blocks = (text: string, role: string) => text.split('\n').filter((l) => l.startsWith(`# pgrevoke cutoff BEGIN "${role}" `)).length;

describe.each(MAJORS)('pg_hba.conf edits under concurrency on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-hba-race-'));
  const state = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-hba-state-'));
  const env = { PGREVOKE_STATE_DIR: state };

  const cutoff = (role: string, extra: string[] = []) =>
    runCli(['cutoff', role, '--yes', '--json', '--hba-file', cl.hbaFile, ...extra, '--dsn', cl.dsn()], env, { timeoutMs: 90_000 });
  const restore = (role: string, from: string) =>
    runCli(['restore', role, '--from', from, '--yes', '--json', '--dsn', cl.dsn()], env, { timeoutMs: 90_000 });
  /** The server's reject rules per role name, as it reads the file now. */
  const rejects = async () => {
    const rows = await cl.sql<{ u: string; n: number }>(
      `SELECT unnest(user_name) AS u, count(*)::int AS n FROM pg_hba_file_rules WHERE auth_method = 'reject' AND error IS NULL GROUP BY 1`,
    );
    return Object.fromEntries(rows.map((r) => [r.u, r.n])) as Record<string, number>;
  };
  const reset = async (content: string) => {
    await cl.writeDataFile('pg_hba.conf', content);
    await cl.sql('SELECT pg_reload_conf()');
  };
  const stepOf = (d: { steps: Step[] }, action: string) => d.steps.find((s) => s.action === action);
  const exitProblem = (label: string, r: CliResult) =>
    r.code === 0 ? [] : [`${label} exit ${r.code}: ${r.stderr.trim() || r.stdout.slice(0, 400)}`];
  /** The --json document, or null (the exit problem says why) when the run printed none. */
  const docOf = <T>(r: CliResult): T | null => {
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      return null;
    }
  };
  const lockFiles = () => (existsSync(path.join(state, 'locks')) ? readdirSync(path.join(state, 'locks')) : []);

  beforeAll(async () => {
    cl = await startCluster(major);
    await reset(HBA);
    for (const r of ['ra', 'rb', 'rc', 'rd', 'rs']) await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD 'pw-${r}'`);
    await cl.sql('CREATE DATABASE other');
  });
  afterAll(async () => {
    await cl?.destroyAll();
    await rm(tmp, { recursive: true, force: true });
    await rm(state, { recursive: true, force: true });
  });

  it(`${ROUNDS} rounds of two concurrent cutoffs of different roles with the same --hba-file: both blocks, once each, both in force`, async () => {
    const problems: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await reset(HBA);
      await cl.sql('ALTER ROLE ra LOGIN; ALTER ROLE rb LOGIN');
      const [a, b] = await Promise.all([cutoff('ra'), cutoff('rb')]);
      const p = [...exitProblem('cutoff ra', a), ...exitProblem('cutoff rb', b)];
      const text = readFileSync(cl.hbaFile, 'utf8');
      for (const r of ['ra', 'rb']) if (blocks(text, r) !== 1) p.push(`${blocks(text, r)} block(s) for ${r} in the file`);
      const rules = await rejects();
      for (const r of ['ra', 'rb']) if (rules[r] !== 2) p.push(`pg_hba_file_rules has ${rules[r] ?? 0} reject line(s) for ${r}`);
      const docs = [a, b].map((x) => docOf<CutoffDoc>(x)).filter((d) => d !== null);
      for (const d of docs) {
        if (stepOf(d, 'hba_reject')?.status !== 'done')
          p.push(`hba_reject ${stepOf(d, 'hba_reject')?.status}: ${stepOf(d, 'hba_reject')?.detail}`);
        if (d.hba?.written !== cl.hbaFile) p.push(`hba.written is ${d.hba?.written}`);
        if (!d.hba?.backup || !existsSync(d.hba.backup)) p.push(`backup ${d.hba?.backup} missing`);
      }
      if (docs[0]?.hba?.backup && docs[0].hba.backup === docs[1]?.hba?.backup) p.push('both runs name the same backup');
      problems.push(...p.map((x) => `round ${round}: ${x}`));
    }
    expect(problems).toEqual([]);
    // no backups beside the live file; in the state directory, pruned to the last few
    expect(readdirSync(path.dirname(cl.hbaFile)).filter((f) => f.includes('.bak'))).toEqual([]);
    const kept = readdirSync(path.join(state, 'hba-backups')).filter((f) => f.startsWith('pg_hba.conf.'));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThanOrEqual(20);
    expect(lockFiles().filter((f) => f.endsWith('.lock'))).toEqual([]);
  });

  it(`${ROUNDS} rounds of a restore of one role racing a cutoff of another: the restored block gone, the new one present, each report truthful`, async () => {
    await reset(HBA);
    await cl.sql('ALTER ROLE ra LOGIN CONNECTION LIMIT 3; ALTER ROLE rb LOGIN');
    const report = path.join(tmp, `ra-${major}.json`);
    const first = await cutoff('ra', ['--report', report]);
    expect(first.code, first.stderr).toBe(0);
    const withA = readFileSync(cl.hbaFile, 'utf8');
    expect(blocks(withA, 'ra'), first.stdout).toBe(1);
    const problems: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      await reset(withA);
      await cl.sql('ALTER ROLE ra NOLOGIN CONNECTION LIMIT 0; ALTER ROLE rb LOGIN');
      const [r, c] = await Promise.all([restore('ra', report), cutoff('rb')]);
      const p = [...exitProblem('restore ra', r), ...exitProblem('cutoff rb', c)];
      const text = readFileSync(cl.hbaFile, 'utf8');
      if (blocks(text, 'ra') !== 0) p.push(`${blocks(text, 'ra')} block(s) for ra left in the file`);
      if (blocks(text, 'rb') !== 1) p.push(`${blocks(text, 'rb')} block(s) for rb in the file`);
      const rules = await rejects();
      if (rules.ra) p.push(`pg_hba_file_rules still rejects ra (${rules.ra} line(s))`);
      if (rules.rb !== 2) p.push(`pg_hba_file_rules has ${rules.rb ?? 0} reject line(s) for rb`);
      const rd = docOf<RestoreDoc>(r) ?? { steps: [] };
      const edit = stepOf(rd, 'hba_remove');
      if (edit?.status !== 'done' || stepOf(rd, 'reload')?.status !== 'done') p.push(`restore steps: ${JSON.stringify(rd.steps)}`);
      if (!edit?.backup || !existsSync(edit.backup)) p.push(`restore names backup ${edit?.backup}`);
      else if (blocks(readFileSync(edit.backup, 'utf8'), 'ra') !== 1) p.push('the restore backup is not the file it edited');
      const cd = docOf<CutoffDoc>(c) ?? { steps: [], hba: null };
      if (stepOf(cd, 'hba_reject')?.status !== 'done')
        p.push(`hba_reject ${stepOf(cd, 'hba_reject')?.status}: ${stepOf(cd, 'hba_reject')?.detail}`);
      const [role] = await cl.sql<{ rolcanlogin: boolean; rolconnlimit: number }>(
        `SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = 'ra'`,
      );
      if (!role?.rolcanlogin || role.rolconnlimit !== 3) p.push(`ra after restore: ${JSON.stringify(role)}`);
      problems.push(...p.map((x) => `round ${round}: ${x}`));
    }
    expect(problems).toEqual([]);
  });

  it(`${CROSS_ROUNDS} rounds of two operators connected to different databases (postgres, other), each with its own state directory: cutoffs of different roles and a restore racing a cutoff keep every block`, async () => {
    // no shared local lock file: only the server lock stands between them, and it must not depend on the database
    const stateA = { PGREVOKE_STATE_DIR: mkdtempSync(path.join(tmp, 'state-a-')) };
    const stateB = { PGREVOKE_STATE_DIR: mkdtempSync(path.join(tmp, 'state-b-')) };
    const cutoffIn = (db: string, role: string, own: NodeJS.ProcessEnv, extra: string[] = []) =>
      runCli(['cutoff', role, '--yes', '--json', '--hba-file', cl.hbaFile, ...extra, '--dsn', cl.dsn(db)], own, { timeoutMs: 90_000 });
    // a long file (as configuration management generates) makes each edit's reload and checks take
    // a while, so that the two edits overlap whenever nothing serializes them
    const filler = Array.from({ length: 8000 }, (_, i) => `host all filler 10.${i >> 8}.${i & 255}.1/32 reject`).join('\n');
    const long = `${HBA}${filler}\n`;
    const problems: string[] = [];
    for (let round = 1; round <= CROSS_ROUNDS; round++) {
      const [ra, rb] = [`xa${round}`, `xb${round}`];
      await cl.sql(`CREATE ROLE ${ra} LOGIN; CREATE ROLE ${rb} LOGIN`);
      await reset(long);
      const racing = round % 2 === 0;
      // even rounds: ra was cut off before and is restored from the other database while rb is cut off
      let restoreRun: Promise<CliResult> | null = null;
      if (racing) {
        const report = path.join(tmp, `x-${major}-${round}.json`);
        const first = await cutoffIn('postgres', ra, stateA, ['--report', report]);
        if (first.code !== 0) problems.push(`round ${round}: setup cutoff ${ra} exit ${first.code}: ${first.stderr.trim()}`);
        restoreRun = runCli(['restore', ra, '--from', report, '--yes', '--json', '--dsn', cl.dsn('other')], stateB, { timeoutMs: 90_000 });
      }
      const [a, b] = await Promise.all([restoreRun ?? cutoffIn('postgres', ra, stateA), cutoffIn('other', rb, racing ? stateA : stateB)]);
      const p = [...exitProblem(`${racing ? 'restore' : 'cutoff'} ${ra}`, a), ...exitProblem(`cutoff ${rb}`, b)];
      const text = readFileSync(cl.hbaFile, 'utf8');
      const want = { [ra]: racing ? 0 : 1, [rb]: 1 };
      for (const [r, k] of Object.entries(want))
        if (blocks(text, r) !== k) p.push(`${blocks(text, r)} block(s) for ${r} in the file, not ${k}`);
      const rules = await rejects();
      for (const [r, k] of Object.entries(want))
        if ((rules[r] ?? 0) !== 2 * k) p.push(`pg_hba_file_rules has ${rules[r] ?? 0} reject line(s) for ${r}, not ${2 * k}`);
      problems.push(...p.map((x) => `round ${round}: ${x}`));
    }
    expect(problems).toEqual([]);
  });

  it('the server lock: while another host holds it, a cutoff waits before it reads the file, then edits the file as it is then', async () => {
    await reset(HBA);
    // the lock lives in template1 whatever database the operator names
    const other = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'postgres', password: cl.password, database: 'template1' });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1::bigint)', [HBA_LOCK_KEY]);
      const run = startCli(['cutoff', 'rc', '--yes', '--json', '--hba-file', cl.hbaFile, '--dsn', cl.dsn()], env, { timeoutMs: 90_000 });
      await waitFor(
        async () =>
          (await cl.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))[0]!.n === 1,
        8_000,
        'the cutoff to wait on the server lock',
      );
      expect(readFileSync(cl.hbaFile, 'utf8')).toBe(HBA);
      // the other operator's edit, made while it holds the lock: the cutoff must keep it
      const edited = `${HBA}# edited by the other operator\n`;
      await cl.writeDataFile('pg_hba.conf', edited);
      await other.query('SELECT pg_advisory_unlock($1::bigint)', [HBA_LOCK_KEY]);
      expect(await run.exited, run.stderr()).toBe(0);
      const text = readFileSync(cl.hbaFile, 'utf8');
      expect(blocks(text, 'rc')).toBe(1);
      expect(text.endsWith(edited)).toBe(true);
      expect((await rejects()).rc).toBe(2);
    } finally {
      await other.end();
    }
  });

  it('template1 refusing connections: the lock is taken in postgres, so an operator in another database still waits for it; neither database: the step fails naming both', async () => {
    await reset(HBA);
    await cl.sql(`CREATE ROLE re LOGIN; CREATE ROLE rf LOGIN`);
    await cl.sql('ALTER DATABASE template1 ALLOW_CONNECTIONS false');
    let other = await cl.connectAs('postgres', cl.password, 'postgres');
    try {
      await other.query('SELECT pg_advisory_lock($1::bigint)', [HBA_LOCK_KEY]);
      const run = startCli(['cutoff', 're', '--yes', '--json', '--hba-file', cl.hbaFile, '--dsn', cl.dsn('other')], env, {
        timeoutMs: 90_000,
      });
      await waitFor(
        async () =>
          (await cl.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))[0]!.n === 1,
        8_000,
        'the cutoff to wait on the server lock in postgres',
      );
      expect(readFileSync(cl.hbaFile, 'utf8')).toBe(HBA);
      await other.query('SELECT pg_advisory_unlock($1::bigint)', [HBA_LOCK_KEY]);
      expect(await run.exited, run.stderr()).toBe(0);
      expect(blocks(readFileSync(cl.hbaFile, 'utf8'), 're')).toBe(1);

      // postgres refused too (gone, or closed to this login): no lock, so no edit, and the reason names both
      await other.end();
      other = await cl.connectAs('postgres', cl.password, 'other'); // "cannot disallow connections for current database"
      await other.query('ALTER DATABASE postgres ALLOW_CONNECTIONS false');
      const r = await runCli(['cutoff', 'rf', '--yes', '--json', '--hba-file', cl.hbaFile, '--dsn', cl.dsn('other')], env, {
        timeoutMs: 90_000,
      });
      expect(r.code, r.stderr).toBe(3);
      const step = stepOf(jsonDoc<CutoffDoc>(r), 'hba_reject')!;
      expect(step.status).toBe('failed');
      expect(step.detail).toMatch(
        /held in database template1 \(or postgres\).*template1: .*not currently accepting connections.*postgres: .*not currently accepting connections/,
      );
      expect(blocks(readFileSync(cl.hbaFile, 'utf8'), 'rf')).toBe(0);
    } finally {
      await other.query('ALTER DATABASE postgres ALLOW_CONNECTIONS true').catch(() => undefined);
      await other.end();
      await cl.sql('ALTER DATABASE template1 ALLOW_CONNECTIONS true');
    }
  });

  it('a SIGKILLed holder of the local lock does not block the next cutoff', async () => {
    await reset(HBA);
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(process.argv[1]); await m.lockHbaFile(process.argv[2], process.env); console.log('held'); setInterval(() => {}, 1e6);`,
        DIST_LOCK,
        realpathSync(cl.hbaFile),
      ],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    holder.stdout.on('data', (d) => (out += d));
    await waitFor(async () => out.includes('held'), 10_000, 'the holder to take the lock');
    expect(lockFiles().filter((f) => f.endsWith('.lock'))).toHaveLength(1);
    const gone = new Promise((resolve) => holder.on('close', resolve));
    holder.kill('SIGKILL');
    await gone;
    const r = await cutoff('rd');
    expect(r.code, r.stderr).toBe(0);
    expect(stepOf(jsonDoc<CutoffDoc>(r), 'hba_reject')?.status).toBe('done');
    expect(blocks(readFileSync(cl.hbaFile, 'utf8'), 'rd')).toBe(1);
    expect(lockFiles().filter((f) => f.endsWith('.lock'))).toEqual([]);
  });

  it('a symlinked pg_hba.conf: the target is edited, the link kept, the report says which file was written; restore brings it back', async () => {
    const real = path.join(path.dirname(cl.hbaFile), 'pg_hba.real');
    await cl.writeDataFile('pg_hba.real', HBA);
    await rm(cl.hbaFile);
    await symlink('pg_hba.real', cl.hbaFile);
    try {
      await cl.sql('SELECT pg_reload_conf()');
      const before = statSync(real);
      const report = path.join(tmp, `rs-${major}.json`);
      const cut = await cutoff('rs', ['--report', report]);
      expect(cut.code, cut.stderr).toBe(0);
      const doc = jsonDoc<CutoffDoc>(cut);
      expect(lstatSync(cl.hbaFile).isSymbolicLink()).toBe(true);
      expect(readlinkSync(cl.hbaFile)).toBe('pg_hba.real');
      expect(blocks(readFileSync(real, 'utf8'), 'rs')).toBe(1);
      expect(doc.hba).toMatchObject({ file: cl.hbaFile, written: real });
      expect(readFileSync(doc.hba!.backup!, 'utf8')).toBe(HBA);
      const after = statSync(real);
      expect([after.mode, after.uid, after.gid]).toEqual([before.mode, before.uid, before.gid]);
      expect((await rejects()).rs).toBe(2);

      const r = await restore('rs', report);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const edit = stepOf(jsonDoc<RestoreDoc>(r), 'hba_remove')!;
      expect(edit).toMatchObject({ status: 'done', written: real });
      expect(blocks(readFileSync(edit.backup!, 'utf8'), 'rs')).toBe(1);
      expect(lstatSync(cl.hbaFile).isSymbolicLink()).toBe(true);
      expect(readFileSync(real, 'utf8')).toBe(HBA);
      expect((await rejects()).rs).toBeUndefined();
    } finally {
      await rm(cl.hbaFile, { force: true });
      await reset(HBA);
    }
  });

  it('unique backup names under fast repetition (the same millisecond), in the state directory, never beside the file', async () => {
    const dir = mkdtempSync(path.join(tmp, 'fast-'));
    const file = path.join(dir, 'pg_hba.conf');
    const own = { ...process.env, PGREVOKE_STATE_DIR: path.join(dir, 'state') };
    writeFileSync(file, 'v0\n');
    const now = new Date();
    const names: string[] = [];
    for (let i = 1; i <= 5; i++) names.push((await replaceFile(file, `v${i}\n`, now, own)).backup);
    expect(new Set(names).size).toBe(5);
    expect(names.map((b) => readFileSync(b, 'utf8'))).toEqual(['v0\n', 'v1\n', 'v2\n', 'v3\n', 'v4\n']);
    expect(names.every((b) => path.dirname(b) === path.join(dir, 'state', 'hba-backups'))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.includes('.bak'))).toEqual([]);
  });
});
