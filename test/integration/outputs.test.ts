// Every file pgrevoke writes, against a real server and a real filesystem, run as the operator
// runs it (as root): links planted at output paths and at the old predictable temp names never
// make it write or chmod anything else; an output that cannot be written stops the command before
// any change (exit 2, the role keeps LOGIN); a disk that fills during the write is exit 3 with the
// report in full on stderr and no temp file left; a loose audit log is tightened and said so.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ident } from '../../src/pg/quote.js';
import { runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const HBA = ['local all all trust', 'host all all 127.0.0.1/32 scram-sha-256'].join('\n') + '\n';
const PRECIOUS = 'precious: not pgrevoke\u2019s to write\n';
const mode = (f: string) => statSync(f).mode & 0o777;

describe.each(MAJORS)('the files pgrevoke writes, on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-outputs-'));
  const env = { PGREVOKE_STATE_DIR: path.join(tmp, 'state') };
  // the victim lives elsewhere, as /etc would: no output may reach it
  const outside = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-outside-'));
  const victim = path.join(outside, 'victim.conf');
  const mounts: string[] = [];
  const clients: pg.Client[] = [];
  let n = 0;

  const run = (args: string[]) => runCli(args, env, { timeoutMs: 90_000 });
  const cutoff = (role: string, ...args: string[]) => run(['cutoff', role, '--dsn', cl.dsn(), ...args]);
  const newRole = async (prefix: string) => {
    const name = `${prefix}_${++n}`;
    await cl.sql(`CREATE ROLE ${ident(name)} LOGIN PASSWORD 'pw-outputs'`);
    return name;
  };
  const canLogin = async (name: string) =>
    (await cl.sql<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [name]))[0]?.l;
  const sessionOf = async (name: string) => {
    const c = await cl.connectAs(name, 'pw-outputs');
    clients.push(c);
    return (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
  };
  const alive = async (pid: number) =>
    (await cl.sql<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid]))[0]!.n === 1;
  const expectVictimUntouched = () => {
    expect(readFileSync(victim, 'utf8')).toBe(PRECIOUS);
    expect(mode(victim)).toBe(0o644);
  };
  const linkToVictim = (name: string) => {
    const link = path.join(tmp, name);
    symlinkSync(victim, link);
    return link;
  };
  /** A tmpfs of its own (root may mount in this sandbox): read-only, or 64 kB to be filled. */
  const mountTmpfs = (name: string, opts: string) => {
    const dir = path.join(tmp, name);
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  };
  /** One refusal line on stderr: the flag, the path, the reason, and that nothing changed. */
  const expectRefused = (r: { code: number | null; stderr: string }, flag: string, file: string, reason: RegExp) => {
    expect(r.code, r.stderr).toBe(2);
    const line = r.stderr.split('\n').find((l) => l.startsWith('pgrevoke: error:'));
    expect(line).toContain(`cannot write ${flag} ${file}: `);
    expect(line).toMatch(reason);
    expect(line).toMatch(/nothing was changed$/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  };

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    writeFileSync(victim, PRECIOUS, { mode: 0o644 });
    chmodSync(victim, 0o644);
  });

  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    for (const dir of mounts) execFileSync('umount', [dir]);
    await cl?.destroyAll();
  });

  it('a symbolic link at --report, --markdown or --audit-log: exit 2 naming it, the victim untouched, the role keeps LOGIN', async () => {
    const role = await newRole('linked');
    for (const flag of ['--report', '--markdown', '--audit-log']) {
      const link = linkToVictim(`link${flag}`);
      const r = await cutoff(role, '--yes', flag, link);
      expectRefused(r, flag, link, /symbolic link/);
      expectVictimUntouched();
      expect(await canLogin(role)).toBe(true);
    }
    // another user's audit log: root appending to it could be made to write what that user chose
    const foreign = path.join(tmp, 'foreign-audit.jsonl');
    writeFileSync(foreign, '', { mode: 0o600 });
    chownSync(foreign, 65534, 65534);
    expectRefused(await cutoff(role, '--yes', '--audit-log', foreign), '--audit-log', foreign, /belongs to uid 65534/);
    expect(await canLogin(role)).toBe(true);
  });

  it('a symbolic link at verify --junit, kill --audit-log or guard --audit-log: exit 2, nothing signalled, the victim untouched', async () => {
    const role = await newRole('linkedk');
    const junit = linkToVictim('junit.xml');
    expectRefused(await run(['verify', role, '--dsn', cl.dsn(), '--junit', junit]), '--junit', junit, /symbolic link/);
    expectVictimUntouched();

    const pid = await sessionOf(role);
    const killLog = linkToVictim('kill-audit.jsonl');
    expectRefused(
      await run(['kill', String(pid), '--dsn', cl.dsn(), '--yes', '--audit-log', killLog]),
      '--audit-log',
      killLog,
      /symbolic link/,
    );
    const guardLog = linkToVictim('guard-audit.jsonl');
    const g = await run(['guard', '--dsn', cl.dsn(), '--once', '--deny', role, '--audit-log', guardLog]);
    expectRefused(g, '--audit-log', guardLog, /symbolic link/);
    expectVictimUntouched();
    expect(await alive(pid)).toBe(true);
  });

  it('links planted at the old predictable temp names (.<name>.<pid>.tmp, next pids): a dry run and a real run touch nothing outside', async () => {
    const role = await newRole('planted');
    const dir = path.join(tmp, 'planted');
    mkdirSync(dir);
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const last = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    // the CLI's pid comes soon after the last one given out (the kernel wraps to 300)
    for (let i = 1; i <= 3000; i++) {
      const pid = last + i > pidMax ? ((last + i) % pidMax) + 300 : last + i;
      for (const name of ['r.json', 'r.md']) symlinkSync(victim, path.join(dir, `.${name}.${pid}.tmp`));
    }
    const report = path.join(dir, 'r.json');
    const markdown = path.join(dir, 'r.md');
    const dry = await cutoff(role, '--dry-run', '--json', '--report', report, '--markdown', markdown);
    expect(dry.code, dry.stderr).toBe(0);
    expectVictimUntouched();
    expect(await canLogin(role)).toBe(true);
    const real = await cutoff(role, '--yes', '--json', '--report', report, '--markdown', markdown);
    expect(real.code, real.stderr).toBe(0);
    expectVictimUntouched();
    expect(await canLogin(role)).toBe(false);
    for (const f of [report, markdown]) {
      expect(statSync(f).isFile()).toBe(true);
      expect(mode(f)).toBe(0o600);
    }
    expect(JSON.parse(readFileSync(report, 'utf8'))).toMatchObject({ dryRun: false, exitCode: 0 });
  });

  it('--report in a missing directory, a directory, or on a read-only file system: exit 2 before any change, the role keeps LOGIN', async () => {
    const role = await newRole('unwritable');
    // relative, as typed: resolved against the working directory, which has no such directory
    const missing = `./no-such-dir-${process.pid}/r.json`;
    expectRefused(await cutoff(role, '--yes', '--report', missing), '--report', missing, /directory .*no-such-dir.* does not exist/);
    const asDir = path.join(tmp, 'a-directory');
    mkdirSync(asDir);
    expectRefused(await cutoff(role, '--yes', '--report', asDir), '--report', asDir, /it is a directory/);
    // chmod 0555 does not stop root; a read-only mount does
    const ro = path.join(mountTmpfs('ro', 'ro,size=64k'), 'r.json');
    expectRefused(await cutoff(role, '--yes', '--report', ro), '--report', ro, /not writable \(read-only file system\)/);
    expect(await canLogin(role)).toBe(true);
    expect(readdirSync(asDir)).toEqual([]);
  });

  it('a file system that fills during the write: exit 3, the report in full on stderr, one line naming the file, no temp file left', async () => {
    const full = mountTmpfs('full', 'size=64k');
    // fill it: the checks before the cutoff pass (the directory is writable), the write itself fails
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(full, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
    } catch {
      /* dd stops at ENOSPC */
    }
    const role = await newRole('fulldisk');
    const report = path.join(full, 'r.json');
    const r = await cutoff(role, '--yes', '--json', '--report', report);
    expect(r.code, r.stderr).toBe(3);
    expect(await canLogin(role)).toBe(false);
    expect(readdirSync(full)).toEqual(['filler']);
    const lines = r.stderr.trimEnd().split('\n');
    const error = lines.filter((l) => l.startsWith('pgrevoke: error:'));
    expect(error).toHaveLength(1);
    expect(error[0]).toContain(`could not write --report ${report}: ENOSPC`);
    // the JSON document on stderr is the one on stdout, whole
    const start = lines.indexOf('{');
    const end = lines.lastIndexOf('}');
    expect(start).toBeGreaterThanOrEqual(0);
    const onStderr = JSON.parse(lines.slice(start, end + 1).join('\n')) as { roles: { name: string }[]; steps: unknown[] };
    expect(onStderr).toEqual(JSON.parse(r.stdout));
    expect(onStderr.roles.map((x) => x.name)).toEqual([role]);

    // text mode: the text report goes to stderr too
    const role2 = await newRole('fulldisk');
    const t = await cutoff(role2, '--yes', '--markdown', path.join(full, 'r.md'));
    expect(t.code, t.stderr).toBe(3);
    expect(t.stderr).toContain(`Cutoff ${JSON.stringify(role2)} on `);
    expect(t.stderr).toMatch(/pgrevoke: error: could not write --markdown .*r\.md: ENOSPC/);
    expect(readdirSync(full)).toEqual(['filler']);
  });

  it('an existing audit log of mode 0644 is tightened to 0600 by cutoff, kill and guard, and each says so once', async () => {
    const said = /audit log .* was mode 0644, open to its group or others: tightened to 0600, as it holds query texts/g;
    const loose = (name: string) => {
      const f = path.join(tmp, name);
      writeFileSync(f, '{"earlier":"line"}\n', { mode: 0o644 });
      chmodSync(f, 0o644);
      return f;
    };
    const role = await newRole('loose');
    const cutLog = loose('loose-cutoff.jsonl');
    const c = await cutoff(role, '--yes', '--audit-log', cutLog);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr.match(said)).toHaveLength(1);
    expect(mode(cutLog)).toBe(0o600);
    expect(readFileSync(cutLog, 'utf8')).toMatch(/^\{"earlier":"line"\}\n\{/);

    const killed = await newRole('loosek');
    const killLog = loose('loose-kill.jsonl');
    const k = await run(['kill', String(await sessionOf(killed)), '--dsn', cl.dsn(), '--yes', '--audit-log', killLog]);
    expect(k.code, k.stderr).toBe(0);
    expect(k.stderr.match(said)).toHaveLength(1);
    expect(mode(killLog)).toBe(0o600);

    const denied = await newRole('looseg');
    const pid = await sessionOf(denied);
    const guardLog = loose('loose-guard.jsonl');
    const g = await run(['guard', '--dsn', cl.dsn(), '--once', '--deny', denied, '--audit-log', guardLog]);
    expect(g.code, g.stderr).toBe(1);
    expect(g.stderr.match(said)).toHaveLength(1);
    expect(mode(guardLog)).toBe(0o600);
    await waitFor(async () => !(await alive(pid)), 10_000, `the denied session ${pid} to end`);
  });

  it('a directory on the way that another user owns or anyone can write: a link in it to a root-owned directory is refused, exit 2, nothing created there', async () => {
    const role = await newRole('ancestor');
    // nobody's world-writable directory, holding a link to a directory of root's (as /etc would be)
    const att = path.join(tmp, 'att');
    mkdirSync(att);
    chownSync(att, 65534, 65534);
    chmodSync(att, 0o777);
    const root = mkdtempSync(path.join(outside, 'rootdir-'));
    chmodSync(root, 0o755);
    symlinkSync(root, path.join(att, 'incident'));
    const report = path.join(att, 'incident', 'r.json');
    expectRefused(
      await cutoff(role, '--dry-run', '--report', report),
      '--report',
      report,
      new RegExp(`directory ${att} is owned by uid 65534`),
    );
    expect(existsSync(path.join(root, 'r.json'))).toBe(false);
    // a group-writable directory without the sticky bit, root's own: its group could swap the file's directory
    const shared = path.join(tmp, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o775);
    const md = path.join(shared, 'r.md');
    expectRefused(
      await cutoff(role, '--yes', '--markdown', md),
      '--markdown',
      md,
      /writable by its group or by everyone without the sticky bit/,
    );
    expect(await canLogin(role)).toBe(true);
    // a state directory below such a directory is refused as well
    const state = path.join(att, 'state');
    const s = await runCli(['cutoff', role, '--yes', '--dsn', cl.dsn()], { PGREVOKE_STATE_DIR: state }, { timeoutMs: 90_000 });
    expect(s.code, s.stderr).toBe(2);
    expect(s.stderr).toMatch(new RegExp(`state directory ${state} .*${att} is owned by uid 65534`));
    expect(await canLogin(role)).toBe(true);
  });

  it('an audit log hard-linked to another file: exit 2 before any change, the other file neither appended to nor chmod-ed', async () => {
    const role = await newRole('hardlink');
    const log = path.join(tmp, 'hard-audit.jsonl');
    linkSync(victim, log);
    expectRefused(await cutoff(role, '--yes', '--audit-log', log), '--audit-log', log, /2 hard links/);
    expectVictimUntouched();
    expect(await canLogin(role)).toBe(true);
  });
});
