// `pgrevoke inspect/cutoff --pgbouncer` as a user runs them, against real PgBouncers (1.18: no
// KILL_CLIENT; 1.24.1: KILL_CLIENT) in front of a real PostgreSQL: the role's pooled clients are
// listed and cut, a bystander's pooled clients keep working, and a pool that logs in as a shared user
// is reported as exposure (exit 1).
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hiddenBackendsSql } from '../../src/checks/hidden-backends.js';
import { runCli, runOnTerminal } from '../helpers/cli.js';
import { canQuery, MAJORS, parkLogin, startCluster, type TestCluster } from '../helpers/cluster.js';
import { PGBOUNCER_ADMIN_PASSWORD, pgbouncerBinaries, pgbouncerVersion, startPgbouncer, type TestPgbouncer } from '../helpers/pgbouncer.js';

const MAJOR = MAJORS[0]!;
const ROLE = 'Pooled Pete';
const PW = 'pw-pete';

interface Section {
  node: string;
  status: string;
  inspection: {
    killClient: boolean;
    clients: { user: string; database: string }[];
    pools: { database: string; sharedUser: string | null }[];
  } | null;
  actions: { command: string; status: string; at: string | null }[];
  notDone: string[];
}

const BINARIES = pgbouncerBinaries().map((bin) => ({ bin, version: pgbouncerVersion(bin) }));

describe.each(BINARIES)(`pgrevoke with --pgbouncer ($version, PostgreSQL ${MAJOR})`, ({ bin, version }) => {
  // from the binary's own -V, not from pgrevoke's version parsing: KILL_CLIENT is new in 1.24
  const hasKillClient = /^PgBouncer 1\.(2[4-9]|[3-9]\d)\./.test(version);

  let cl: TestCluster;
  let bouncer: TestPgbouncer;
  const cutoff = (...args: string[]) => runCli(['cutoff', ROLE, '--yes', '--json', '--playbook', 'contain-only', ...args]);

  beforeAll(async () => {
    cl = await startCluster(MAJOR);
    await cl.sql(`CREATE ROLE "${ROLE}" LOGIN PASSWORD '${PW}'`);
    await cl.sql(`CREATE ROLE bob LOGIN PASSWORD 'pw-bob'`);
    await cl.sql(`CREATE ROLE app_shared LOGIN PASSWORD 'pw-shared'`);
    await cl.sql('CREATE DATABASE appdb');
    bouncer = await startPgbouncer(
      cl,
      {
        databases: [
          { name: 'app', dbname: 'appdb', poolMode: 'transaction' },
          // a pool of its own for the last test: PgBouncer holds off new server logins of a pool for
          // server_login_retry (15 s) after one failed, as the role's did in the tests before
          { name: 'late', dbname: 'appdb', poolMode: 'transaction' },
          { name: 'shared', dbname: 'appdb', forceUser: { user: 'app_shared', password: 'pw-shared' } },
        ],
        users: { [ROLE]: PW, bob: 'pw-bob' },
        settings: { query_wait_timeout: 2 },
      },
      bin,
    );
  }, 60_000);

  afterAll(async () => {
    await bouncer?.stop();
    await cl?.destroyAll();
  });

  it('on a terminal the prompt shows the PgBouncer commands too; "no" changes nothing', async () => {
    const mine = await bouncer.connectAs(ROLE, PW, 'app');
    await mine.query('SELECT 1');
    const r = await runOnTerminal(['cutoff', ROLE, '--show-sql', '--dsn', cl.dsn(), '--pgbouncer', bouncer.consoleDsn], 'n\r');
    expect(r.code, r.screen).toBe(2);
    expect(r.screen).toContain(`ALTER ROLE "${ROLE}" NOLOGIN`);
    expect(r.screen).toContain('PgBouncer, once NOLOGIN has committed');
    expect(r.screen).toMatch(/PLANNED\s+RECONNECT "app"/);
    expect(r.screen).toMatch(
      hasKillClient ? /PLANNED\s+KILL_CLIENT \d+/ : /SKIPPED\s+KILL_CLIENT <id>: KILL_CLIENT needs PgBouncer >= 1\.24\.0/,
    );
    expect(r.screen).toContain('nothing was changed');
    expect(r.screen).not.toContain(PGBOUNCER_ADMIN_PASSWORD);
    // the preview ran nothing on the console: the pooled client still works, the role still logs in
    expect(await canQuery(mine)).toBe(true);
    const [row] = await cl.sql<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [ROLE]);
    expect(row!.l).toBe(true);
    await mine.end();
  });

  it('inspect lists the role pooled clients and names the shared-user pool; cutoff cuts them, bob keeps working', async () => {
    const mine = [await bouncer.connectAs(ROLE, PW, 'app'), await bouncer.connectAs(ROLE, PW, 'app')];
    for (const c of mine) await c.query('SELECT 1');
    const viaShared = await bouncer.connectAs(ROLE, PW, 'shared');
    await viaShared.query('SELECT 1');
    const bob = await bouncer.connectAs('bob', 'pw-bob', 'app');
    await bob.query('SELECT 1');

    const insp = await runCli(['inspect', ROLE, '--json', '--dsn', cl.dsn(), '--pgbouncer', bouncer.consoleDsn]);
    expect(insp.code, insp.stderr).toBe(0);
    const doc = JSON.parse(insp.stdout) as { kind: string; verdict: string; pgbouncer: Section[] };
    expect(doc.kind).toBe('fleet');
    expect(doc.verdict).toBe('exposed');
    const s = doc.pgbouncer[0]!;
    expect(
      s
        .inspection!.clients.filter((c) => c.user === ROLE)
        .map((c) => c.database)
        .sort(),
    ).toEqual(['app', 'app', 'shared']);
    expect(s.inspection!.clients.some((c) => c.user === 'bob')).toBe(false);
    expect(s.inspection!.pools.find((p) => p.database === 'shared')?.sharedUser).toBe('app_shared');
    expect(insp.stdout).not.toContain(PGBOUNCER_ADMIN_PASSWORD);

    const cut = await cutoff('--dsn', cl.dsn(), '--pgbouncer', bouncer.consoleDsn);
    // the shared pool still reaches PostgreSQL as app_shared: exposure remains, said plainly
    expect(cut.code, cut.stdout + cut.stderr).toBe(1);
    const rep = JSON.parse(cut.stdout) as { nodes: { status: string }[]; pgbouncer: Section[]; exposure: string[] };
    expect(rep.nodes[0]!.status).toBe('contained');
    const sec = rep.pgbouncer[0]!;
    const killClient = sec.inspection!.killClient;
    expect(killClient).toBe(hasKillClient);
    expect(sec.actions.find((a) => a.command === 'RECONNECT "app"')?.status).toBe('done');
    const kills = sec.actions.filter((a) => a.command.startsWith('KILL_CLIENT'));
    expect(kills.map((a) => a.status)).toEqual(killClient ? ['done', 'done', 'done'] : ['skipped']);
    expect(rep.exposure.join('\n')).toMatch(/shared user app_shared/);
    // what is merely not done (no KILL_CLIENT before 1.24) is in the section, not in the exposure
    expect(rep.exposure.join('\n')).not.toMatch(/KILL_CLIENT/);
    if (!killClient) expect(sec.notDone.join('\n')).toMatch(/KILL_CLIENT needs PgBouncer >= 1\.24\.0/);
    expect(cut.stdout).not.toContain(PGBOUNCER_ADMIN_PASSWORD);

    for (const c of mine) expect(await canQuery(c)).toBe(false);
    expect(await canQuery(bob)).toBe(true);
    // KILL_CLIENT drops the role's client in the shared pool as well; RECONNECT cannot touch it
    expect(await canQuery(viaShared)).toBe(!killClient);
    // either way the exposure is real: PgBouncer admits the role again and runs it as app_shared
    const again = await bouncer.connectAs(ROLE, PW, 'shared');
    expect((await again.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u).toBe('app_shared');
    await Promise.all([...mine, viaShared, bob, again].map((c) => c.end().catch(() => undefined)));
  });

  it('an unreachable console: the nodes are still contained, the exit code is 3 and the report names it', async () => {
    await cl.sql(`ALTER ROLE "${ROLE}" LOGIN CONNECTION LIMIT -1`);
    const c = await cl.connectAs(ROLE, PW);
    const res = await cutoff('--dsn', cl.dsn(), '--pgbouncer', `postgresql://pgb_admin:${PGBOUNCER_ADMIN_PASSWORD}@127.0.0.1:1/pgbouncer`);
    expect(res.code, res.stdout + res.stderr).toBe(3);
    const rep = JSON.parse(res.stdout) as { nodes: { status: string }[]; pgbouncer: Section[]; exposure: string[] };
    expect(rep.nodes[0]!.status).toBe('contained');
    expect(rep.pgbouncer[0]!.status).toBe('unreachable');
    expect(rep.exposure.join('\n')).toMatch(/pgbouncer 127\.0\.0\.1:1: not reached/);
    expect(res.stdout + res.stderr).not.toContain(PGBOUNCER_ADMIN_PASSWORD);
    expect(await canQuery(c)).toBe(false);
  });

  it('the console commands run as soon as NOLOGIN has committed, while the node still settles; the audit log has their times', async () => {
    await cl.sql(`ALTER ROLE "${ROLE}" LOGIN CONNECTION LIMIT -1`);
    const pooled = await bouncer.connectAs(ROLE, PW, 'late');
    await pooled.query('SELECT 1');
    // a login of the role parked in the post-authentication window keeps the node's settle loop busy
    // for the 1.5 s grace, after which it is terminated by pid
    await parkLogin(cl, ROLE, PW);
    expect(await cl.sql(hiddenBackendsSql(MAJOR))).toHaveLength(1);
    const audit = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-pgb-audit-')), 'audit.jsonl');
    const res = await cutoff('--hidden-grace', '1500', '--audit-log', audit, '--dsn', cl.dsn(), '--pgbouncer', bouncer.consoleDsn);
    expect([0, 1], res.stdout + res.stderr).toContain(res.code); // 1: the shared pool's exposure
    const rep = JSON.parse(res.stdout) as {
      nodes: { report: { committedAt: string; steps: { action: string; startedAt: string; durationMs: number }[] } }[];
      pgbouncer: Section[];
    };
    const node = rep.nodes[0]!.report;
    const settle = node.steps.find((x) => x.action === 'settle')!;
    const settleEnd = Date.parse(settle.startedAt) + settle.durationMs;
    expect(settle.durationMs).toBeGreaterThanOrEqual(1000);
    const sent = rep.pgbouncer[0]!.actions.filter((a) => a.status === 'done');
    expect(sent.map((a) => a.command)).toContain('RECONNECT "late"');
    for (const a of sent) {
      expect(Date.parse(a.at!)).toBeGreaterThanOrEqual(Date.parse(node.committedAt));
      expect(Date.parse(a.at!)).toBeLessThan(settleEnd);
    }
    const lines = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; time: string; detail: string });
    const reconnect = lines.find((l) => l.action === 'pgbouncer_reconnect' && l.detail.startsWith('RECONNECT "late"'))!;
    expect(reconnect.time).toBe(sent.find((a) => a.command === 'RECONNECT "late"')!.at);
    expect(await canQuery(pooled)).toBe(false);
    await pooled.end().catch(() => undefined);
  });
});
