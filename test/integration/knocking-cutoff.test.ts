// Who is still knocking, cutoff's part, against real servers (csvlog on 14, jsonlog from 15): while
// an attacker keeps logging in as the role from 127.0.0.2 and 127.0.0.3, the cutoff's report lists
// the logins refused after the NOLOGIN commit, by address (JSON and text), and nothing from before
// it or of another role; the log is read only after the containment statement (every statement of
// pgrevoke's sessions logged, their order in the log compared); a dry run reads nothing from it;
// a log that cannot be read is one line and changes neither the verdict nor the exit code.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CutoffReport } from '../../src/record/cutoff-report.js';
import { SqlLogSource } from '../../src/serverlog/sql-source.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { attempt, pollFor, sqlLogSettings } from '../helpers/serverlog.js';

const HBA = ['local all all trust', 'host all all 127.0.0.0/8 scram-sha-256'].join('\n');

interface Attacker {
  /** Every attempt: when it ended (this host's clock) and 'allow' or the SQLSTATE it was refused with. */
  tries: { at: number; result: string }[];
  stop(): Promise<void>;
}

/** Logs in as `user` from `from` again and again (the right password: refused only by the cutoff). */
function attacker(cl: TestCluster, user: string, password: string, from: string): Attacker {
  let stopped = false;
  const tries: Attacker['tries'] = [];
  const loop = (async () => {
    while (!stopped) tries.push({ result: await attempt(cl, { user, password, from }), at: Date.now() });
  })();
  return {
    tries,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

describe.each(MAJORS)('cutoff: logins refused after the cutoff, from the server log, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-knocking-'));
  const format = major >= 15 ? 'jsonlog' : 'csvlog';

  /** The current log file's end: where the next statements will be logged. */
  const logEnd = async () =>
    (
      await cl.sql<{ file: string; size: string }>(`SELECT f AS file, (pg_stat_file(f)).size AS size FROM pg_current_logfile($1) AS f`, [
        format,
      ])
    )[0]!;
  /** What was logged from `from` on, once the collector has written it. */
  const loggedSince = async (from: { file: string; size: string }) => {
    await new Promise((r) => setTimeout(r, 300));
    const rows = await cl.sql<{ t: string }>(`SELECT pg_read_file($1, $2::bigint, 100000000) AS t`, [from.file, from.size]);
    return rows[0]!.t;
  };

  beforeAll(async () => {
    cl = await startCluster(major, sqlLogSettings(major));
    await cl.writeDataFile('pg_hba.conf', `${HBA}\n`);
    await cl.sql('SELECT pg_reload_conf()');
    // every statement of pgrevoke's own sessions is logged (not this harness's, which started before)
    await cl.sql(`ALTER ROLE postgres SET log_statement = 'all'`);
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'a'; CREATE ROLE op LOGIN PASSWORD 'op-pw' CREATEROLE IN ROLE pg_signal_backend`);
  });
  afterAll(async () => cl?.destroyAll());

  it('an attacker still trying from two addresses: every refusal after the commit, by address; none before, none of another role', async () => {
    await cl.sql(`CREATE ROLE mallory LOGIN PASSWORD 'm'`);
    const source = new SqlLogSource(cl.admin);
    await source.poll();
    // before the cutoff: failures of mallory (a wrong password) that it must not count
    for (let i = 0; i < 3; i++) expect(await attempt(cl, { user: 'mallory', from: '127.0.0.5' })).toBe('28P01');
    await pollFor(source, 3);
    const attackers = [attacker(cl, 'mallory', 'm', '127.0.0.2'), attacker(cl, 'mallory', 'm', '127.0.0.3')];
    const bystander = attacker(cl, 'alice', 'wrong', '127.0.0.4');
    await new Promise((r) => setTimeout(r, 300));
    const before = await logEnd();
    const reportFile = path.join(tmp, `report-${major}.json`);
    const r = await runCli(['cutoff', 'mallory', '--yes', '--report', reportFile, '--dsn', cl.dsn()], {}, { timeoutMs: 90_000 });
    await Promise.all([...attackers, bystander].map((a) => a.stop()));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as CutoffReport;
    expect(report.refusedLoginsUnreadable).toBeNull();
    const k = report.refusedLogins!;
    expect(k.since).toBe(report.committedAt);
    expect(k.complete).toBe(true);
    expect(k.log.format).toBe(format);
    expect(k.roles.map((x) => x.role)).toEqual(['mallory']);
    const m = k.roles[0]!;
    expect(m.addresses.map((a) => a.address).sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    const committed = Date.parse(report.committedAt!);
    for (const a of m.addresses) {
      const tries = attackers[a.address === '127.0.0.2' ? 0 : 1]!.tries;
      // each refused attempt the attacker saw counts at most once; at least one came before the log was read
      expect(a.count).toBeGreaterThanOrEqual(1);
      expect(a.count).toBeLessThanOrEqual(tries.filter((t) => t.result === '28000').length);
      expect(Date.parse(a.first)).toBeGreaterThanOrEqual(Math.floor(committed));
      expect(Object.keys(a.kinds).every((kind) => kind === 'nologin' || kind === 'hba_reject')).toBe(true);
    }
    expect(m.count).toBe(m.addresses.reduce((n, a) => n + a.count, 0));
    // the attackers did get in before the cutoff, and were refused after it
    for (const a of attackers) expect(a.tries.some((t) => t.result === 'allow') && a.tries.some((t) => t.result === '28000')).toBe(true);
    // the text report's verification part says it, one line per address
    const lines = r.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith(`Refused logins since the cutoff (${m.count}): from `));
    expect(at, r.stdout).toBeGreaterThan(0);
    expect(lines[at]).toContain(`server log read back to `);
    expect(lines.slice(at, at + 6).join('\n')).toMatch(/^ {2}127\.0\.0\.2 +\d+ {2}.*(nologin|hba_reject) \d+/m);
    expect(lines.slice(at, at + 6).join('\n')).toMatch(/^ {2}127\.0\.0\.3 +\d+ {2}/m);
    expect(r.stdout).not.toContain('127.0.0.4');
    expect(r.stdout).not.toContain('127.0.0.5');
    expect(report.steps.find((s) => s.action === 'verify')!.detail).toMatch(
      /; \d+ login\(s\) refused since the cutoff from 2 address\(es\)$/,
    );
    // the log was read only after the containment statement: pgrevoke's first look at it comes later in the log
    const logged = await loggedSince(before);
    const contain = logged.indexOf('NOLOGIN CONNECTION LIMIT 0');
    const read = logged.indexOf(`current_setting('log_destination')`);
    expect(contain).toBeGreaterThan(0);
    expect(read).toBeGreaterThan(contain);
  });

  it('a dry run reads nothing from the log and reports nothing of it', async () => {
    await cl.sql(`CREATE ROLE dry LOGIN PASSWORD 'd'`);
    const before = await logEnd();
    const r = await runCli(['cutoff', 'dry', '--dry-run', '--json', '--dsn', cl.dsn()]);
    expect(r.code, r.stderr).toBe(0);
    const doc = jsonDoc<CutoffReport>(r);
    expect(doc.refusedLogins).toBeNull();
    expect(doc.refusedLoginsUnreadable).toBeNull();
    const logged = await loggedSince(before);
    expect(logged).toContain('statement: '); // its statements are logged ...
    expect(logged).not.toContain('log_destination'); // ... and none of them looks at the log
    expect(logged).not.toContain('pg_read_binary_file');
  });

  it('an operator that cannot read the log: one line in the report, the verdict and exit code unchanged', async () => {
    await cl.sql(`CREATE ROLE victim LOGIN PASSWORD 'v'`);
    if (major >= 16) await cl.sql(`GRANT victim TO op WITH ADMIN OPTION`); // 16+: CREATEROLE alters only the roles it administers
    const reportFile = path.join(tmp, `unreadable-${major}.json`);
    const r = await runCli(
      ['cutoff', 'victim', '--yes', '--report', reportFile, '--dsn', cl.url('op', 'op-pw')],
      {},
      { timeoutMs: 90_000 },
    );
    const doc = JSON.parse(readFileSync(reportFile, 'utf8')) as CutoffReport;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(doc.exitCode).toBe(0);
    expect(doc.verification.map((v) => v.verdict)).toEqual(['contained']);
    expect(doc.refusedLogins).toBeNull();
    expect(doc.refusedLoginsUnreadable).toMatch(/^permission denied for function pg_ls_logdir: read it as a superuser, or GRANT EXECUTE/);
    expect(doc.steps.find((s) => s.action === 'verify')!.status).toBe('done');
    const mentions = r.stdout.split('\n').filter((l) => l.includes('Refused logins'));
    expect(mentions).toEqual([`Refused logins since the cutoff: not read: ${doc.refusedLoginsUnreadable}`]);
  });
});
