// False containment: setups where inspect said the role is contained and verify exited 0 while a
// real login of the role succeeded. Each case writes pg_hba.conf (reloaded or deliberately not),
// runs `pgrevoke inspect --json` and `pgrevoke verify --json` as a subprocess, as the superuser or
// as a non-superuser operator (ops), sometimes as an OS user that cannot read the file (nobody) or
// in a mount namespace where the path names another file, then makes the real login with
// node-postgres. Whenever the login succeeds, inspect must say exposed and verify must not pass.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_ENV, BIN, type CliResult } from '../helpers/cli.js';
import { loginOutcome, MAJORS, reloadAndWait, startCluster, type TestCluster } from '../helpers/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The harness's socket and TCP superuser, and ops over TCP; rules under test start at line 4. */
const BASE = 'local all postgres trust\nhost all postgres 127.0.0.1/32 scram-sha-256\nhost all ops 127.0.0.1/32 scram-sha-256\n';
const OPS_PW = 'ops-secret-pw';
const NOBODY = 65534;

interface Doc {
  verdict: string;
  hba: { rawSource: string | null; reloadPending: boolean | null; mismatches: unknown[] };
  findings: { id: string; severity: string; detail: string; exposure: boolean }[];
}
interface VerifyDoc {
  roles: { status: string; checks: { name: string; status: string; message: string }[] }[];
}

/** Where the CLI runs: which OS user, and (as root) a command to wrap it in (unshare). */
interface RunAs {
  uid?: number;
  wrap?: (argv: string[]) => string[];
}

/** A state directory anyone may write, for a CLI run as nobody. */
const SHARED_STATE = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-fc-state-'));
chmodSync(SHARED_STATE, 0o777);

function run(args: string[], as: RunAs = {}): Promise<CliResult> {
  const argv = [process.execPath, BIN, ...args];
  const [file, ...rest] = as.wrap ? as.wrap(argv) : argv;
  const child = spawn(file!, rest, {
    env: { ...BASE_ENV, PGREVOKE_STATE_DIR: SHARED_STATE },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(as.uid !== undefined ? { uid: as.uid, gid: as.uid, cwd: '/' } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.each(MAJORS)('no false containment on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let hbaPath: string;
  const opsDsn = () => `postgresql://ops:${OPS_PW}@127.0.0.1:${cl.port}/postgres`;

  beforeAll(async () => {
    cl = await startCluster(major);
    hbaPath = (await cl.sql<{ f: string }>(`SELECT current_setting('hba_file') AS f`))[0]!.f;
    await cl.sql(`CREATE ROLE staff NOLOGIN`);
    await cl.sql(`CREATE ROLE alice LOGIN`);
    await cl.sql(`GRANT staff TO alice`);
    await cl.sql(`CREATE ROLE bob LOGIN VALID UNTIL '2001-01-01'`);
    await cl.sql(`CREATE ROLE ops LOGIN PASSWORD '${OPS_PW}'`);
    await cl.sql(`GRANT SELECT ON pg_catalog.pg_hba_file_rules TO ops`);
    await cl.sql(`GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO ops`);
    await cl.sql(`GRANT pg_read_all_settings, pg_read_all_stats TO ops`);
  });

  afterAll(async () => {
    await cl?.destroyAll();
  });

  const reload = () => reloadAndWait(cl);

  /** Write the file dated 2 s back (so it is plainly older than the reload that follows). */
  async function write(lines: string, backdate = true): Promise<void> {
    await cl.writeDataFile('pg_hba.conf', BASE + lines + '\n');
    if (backdate) {
      const t = new Date(Date.now() - 2000);
      await fs.utimes(hbaPath, t, t);
    }
  }

  async function load(lines: string): Promise<void> {
    await write(lines);
    await reload();
    expect(await cl.sql(`SELECT error FROM pg_hba_file_rules WHERE error IS NOT NULL`)).toEqual([]);
  }

  /** The real login from 127.0.0.1: 'allow' or the SQLSTATE of the refusal. */
  const login = (user: string) => loginOutcome(cl, { user });

  async function inspect(role: string, dsn: string, as: RunAs = {}): Promise<Doc> {
    const r = await run(['inspect', role, '--dsn', dsn, '--json'], as);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Doc;
  }

  /**
   * The role really logs in; inspect must call it exposed (role.can_login with exposure) and
   * verify must not pass it (exit 1 exposed, or 2 could not tell; the login check not 'pass').
   */
  async function expectNoContainmentClaim(role: string, dsn: string, as: RunAs = {}): Promise<Doc> {
    const doc = await inspect(role, dsn, as);
    const v = await run(['verify', role, '--dsn', dsn, '--json'], as);
    const vdoc = JSON.parse(v.stdout) as VerifyDoc;
    expect(await login(role)).toBe('allow');
    const canLogin = doc.findings.find((f) => f.id === 'role.can_login');
    expect(canLogin, JSON.stringify(doc.findings)).toMatchObject({ exposure: true });
    expect(doc.verdict).toBe('exposed');
    const loginCheck = vdoc.roles[0]!.checks.find((c) => c.name === 'login')!;
    expect(loginCheck.status, loginCheck.message).not.toBe('pass');
    expect([1, 2]).toContain(v.code);
    return doc;
  }

  it('control: an expired role admitted only by a password line is contained', async () => {
    await load('host all bob 127.0.0.1/32 scram-sha-256');
    const v = await run(['verify', 'bob', '--dsn', cl.dsn(), '--json']);
    expect(v.code, v.stdout).toBe(0);
    expect(await login('bob')).toBe('28P01');
  });

  it('1: an expired role and a trust line on samehost (undecidable) is not contained', async () => {
    await load('host all bob samehost trust');
    await expectNoContainmentClaim('bob', cl.dsn());
  });

  if (major >= 16)
    it('1: an expired role and a trust line with a user regex (undecidable) is not contained', async () => {
      await load('host all /^bo 127.0.0.1/32 trust');
      await expectNoContainmentClaim('bob', cl.dsn());
    });

  it('1: an expired role, view only (ops as nobody), a quoted "all" reject above trust is not contained', async () => {
    await load('host all "all" 127.0.0.1/32 reject\nhost all all 127.0.0.1/32 trust');
    const doc = await expectNoContainmentClaim('bob', opsDsn(), { uid: NOBODY });
    expect(doc.hba.rawSource).toBeNull();
  });

  it('2a: an expired role, trust in force, scram on disk without reload, is not contained', async () => {
    await load('host all bob 127.0.0.1/32 trust');
    await sleep(1100);
    await write('host all bob 127.0.0.1/32 scram-sha-256', false);
    const doc = await expectNoContainmentClaim('bob', cl.dsn());
    expect(doc.hba.reloadPending).toBe(true);
  });

  it('2b: an expired role, trust in force, a refused reload of a scram file, is not contained', async () => {
    await load('host all bob 127.0.0.1/32 trust');
    await write('host all bob 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 bogusmethod');
    await reload();
    const doc = await expectNoContainmentClaim('bob', cl.dsn());
    expect(doc.findings.some((f) => f.id === 'hba.file_error' && f.severity === 'high')).toBe(true);
  });

  it('3: a reject line written in the same second as the reload is not taken as in force', async () => {
    await load('host all all 127.0.0.1/32 trust');
    for (let attempt = 0; ; attempt++) {
      while (Date.now() % 1000 > 100) await sleep(5);
      const t = await reload();
      await write('host all alice 0.0.0.0/0 reject\nhost all all 127.0.0.1/32 trust', false);
      const m = (await fs.stat(hbaPath)).mtimeMs / 1000;
      if (Math.floor(m) === Math.floor(t)) break;
      expect(attempt, 'could not write in the same second as the reload').toBeLessThan(5);
      await load('host all all 127.0.0.1/32 trust');
    }
    await expectNoContainmentClaim('alice', cl.dsn());
    await load('host all all 127.0.0.1/32 trust');
  });

  it('4: an operator that cannot tell whether a reload is pending does not claim containment', async () => {
    await load('host all alice 127.0.0.1/32 trust');
    await write('host all carol 127.0.0.1/32 trust');
    const doc = await expectNoContainmentClaim('alice', opsDsn(), { uid: NOBODY });
    expect(doc.hba).toMatchObject({ rawSource: null, reloadPending: null });
    await reload();
  });

  it("5: a file on this host at the hba_file path is not taken as the server's", async () => {
    await load('host all "all" 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 trust');
    const other = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-other-hba-')), 'pg_hba.conf');
    await fs.writeFile(other, BASE + 'host all all 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 trust\n');
    // another host's view of the same path: a private mount namespace with another file bound over it
    const wrap = (argv: string[]) => ['unshare', '-m', 'sh', '-c', `mount --bind "$0" "$1" && shift && exec "$@"`, other, hbaPath, ...argv];
    const doc = await expectNoContainmentClaim('alice', opsDsn(), { wrap });
    expect(doc.hba.rawSource).not.toBe('local');
    // with pg_stat_file the local file is compared with the server's (size, modification): still not used
    await cl.sql(`GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text), pg_catalog.pg_stat_file(text, boolean) TO ops`);
    try {
      const granted = await expectNoContainmentClaim('alice', opsDsn(), { wrap });
      expect(granted.hba.rawSource).not.toBe('local');
    } finally {
      await cl.sql(`REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text), pg_catalog.pg_stat_file(text, boolean) FROM ops`);
    }
  });

  it('6: a NUL byte swallows the next line as the server reads it; quoting is not taken from the wrong line', async () => {
    await write('#\0\nhost all all 0.0.0.0/0 reject\nhost all "all" 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 trust');
    await reload();
    const view = await cl.sql<{ line_number: number; user_name: string[] }>(
      `SELECT line_number, user_name FROM pg_hba_file_rules WHERE line_number > 3 ORDER BY line_number`,
    );
    // the server: line 5 joined to the comment, later lines numbered one less
    expect(view.map((r) => r.line_number)).toEqual([5, 6]);
    const doc = await expectNoContainmentClaim('alice', cl.dsn());
    expect(doc.hba.mismatches).toEqual([]);
  });
});
