// Who is still knocking on a standby (the attacker tries the standby next): a cutoff over a primary
// and its streaming standby, an attacker logging in on the standby from 127.0.0.2 and 127.0.0.3;
// the standby's own report lists the logins its own log refused from the moment it had replayed
// the NOLOGIN commit (it has no committedAt of its own), the primary's none. csvlog on 14, jsonlog from 15.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CutoffReport } from '../../src/record/cutoff-report.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, startStandby, type TestCluster } from '../helpers/cluster.js';
import { attempt, sqlLogSettings } from '../helpers/serverlog.js';

// the standby is built and streams over replication connections: pg_basebackup over TCP (14, 15), the walreceiver over the socket
const HBA = [
  'local all all trust',
  'local replication all trust',
  'host replication postgres 127.0.0.1/32 scram-sha-256',
  'host all all 127.0.0.0/8 scram-sha-256',
].join('\n');

describe.each(MAJORS)('cutoff over a primary and a standby: refused logins on the standby, PostgreSQL %i', (major) => {
  let primary: TestCluster;
  let standby: TestCluster;

  beforeAll(async () => {
    primary = await startCluster(major, { full_page_writes: 'on', ...sqlLogSettings(major) });
    await primary.writeDataFile('pg_hba.conf', `${HBA}\n`);
    await primary.sql('SELECT pg_reload_conf()');
    await primary.sql(`CREATE ROLE mallory LOGIN PASSWORD 'm'`);
    standby = await startStandby(primary, sqlLogSettings(major));
    await standby.writeDataFile('pg_hba.conf', `${HBA}\n`);
    await standby.sql('SELECT pg_reload_conf()');
    for (let i = 0; i < 100; i++) {
      if ((await standby.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'mallory'`))[0]!.n === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }, 120_000);

  afterAll(async () => {
    await standby?.destroyAll();
    await primary?.destroyAll();
  });

  it("the standby's report lists the attacker's refused logins from both addresses, counted from its replay", async () => {
    let stopped = false;
    const results: string[] = [];
    const loops = ['127.0.0.2', '127.0.0.3'].map(async (from) => {
      while (!stopped) results.push(await attempt(standby, { user: 'mallory', password: 'm', from }));
    });
    await new Promise((r) => setTimeout(r, 300));
    const r = await runCli(
      ['cutoff', 'mallory', '--yes', '--json', '--target', primary.dsn(), '--target', standby.dsn()],
      {},
      { timeoutMs: 90_000 },
    );
    stopped = true;
    await Promise.all(loops);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(results).toContain('allow'); // it got in on the standby before the cutoff
    const doc = jsonDoc<{ nodes: { role: string; report: CutoffReport }[] }>(r);
    const sb = doc.nodes.find((n) => n.role === 'standby')!.report;
    const pr = doc.nodes.find((n) => n.role === 'primary')!.report;
    expect(sb.committedAt).toBeNull();
    const k = sb.refusedLogins!;
    expect(sb.refusedLoginsUnreadable).toBeNull();
    const replay = sb.steps.find((s) => s.action === 'await_replay')!;
    expect(Date.parse(k.since)).toBe(Date.parse(replay.startedAt!) + replay.durationMs!);
    const m = k.roles[0]!;
    expect(m.addresses.map((a) => a.address).sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    for (const a of m.addresses) expect(Date.parse(a.first)).toBeGreaterThanOrEqual(Math.floor(Date.parse(k.since)));
    // the primary's own log saw none of them
    expect(pr.refusedLogins!.roles[0]!.count).toBe(0);
  });
});
