// A primary with a streaming standby (see startStandby), the role's sessions on both, on every major
// under test: one cutoff over both nodes ends them all, bystanders on both survive, and verify over
// both passes.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/embedded/cluster.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, runOnTerminal } from '../helpers/cli.js';
import { canQuery, MAJORS, startCluster, startStandby, waitForReplay, type TestCluster } from '../helpers/cluster.js';

const ROLE = 'Mallory "ops"';
const PW = 'pw-m';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface NodeOut {
  node: string;
  role: string;
  status: string;
  report: {
    node: string;
    terminated: { node: string; user: string; pid: number }[];
    replay: { caughtUp: boolean; target: string; waitedMs: number; lagBytes: number } | null;
    commitLsn: string | null;
    steps: { action: string; status: string; node: string; sql: string[]; executed: string[]; detail: string | null }[];
  } | null;
}

describe.each(MAJORS)('cutoff over a primary and its streaming standby (PostgreSQL %i)', (major) => {
  let primary: TestCluster;
  let standby: TestCluster;
  const targets = () => ['--target', primary.dsn(), '--target', standby.dsn()];

  beforeAll(async () => {
    // full_page_writes on: a base backup taken from a standby (the cascade below) needs it
    primary = await startCluster(major, { full_page_writes: 'on' });
    await primary.sql(`CREATE ROLE "Mallory ""ops""" LOGIN PASSWORD '${PW}'`);
    await primary.sql(`CREATE ROLE alice LOGIN PASSWORD 'pw-a'`);
    standby = await startStandby(primary);
    // the roles must have replayed before anyone can log in on the standby
    for (let i = 0; i < 100; i++) {
      const rows = await standby.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1`, [ROLE]);
      if (rows[0]!.n === 1) break;
      await sleep(50);
    }
  }, 120_000);

  afterAll(async () => {
    await standby?.destroyAll();
    await primary?.destroyAll();
  });

  it('inspect and verify over both nodes see the sessions on the standby that the primary cannot see', async () => {
    const onStandby = await standby.connectAs(ROLE, PW);
    const insp = await runCli(['inspect', ROLE, '--json', ...targets()]);
    expect(insp.code, insp.stderr).toBe(0);
    const doc = JSON.parse(insp.stdout) as { kind: string; verdict: string; nodes: { role: string; value: { sessions: unknown[] } }[] };
    expect(doc.kind).toBe('fleet');
    expect(doc.nodes.map((n) => n.role)).toEqual(['primary', 'standby']);
    expect(doc.nodes[1]!.value.sessions.length).toBeGreaterThanOrEqual(1);
    const ver = await runCli(['verify', ROLE, ...targets()]);
    expect(ver.code, ver.stdout + ver.stderr).toBe(1);
    await onStandby.end();
  });

  it('dry run over both nodes shows a standby plan without DDL and changes nothing', async () => {
    const res = await runCli(['cutoff', ROLE, '--dry-run', '--json', ...targets()]);
    expect(res.code, res.stderr).toBe(0);
    const doc = JSON.parse(res.stdout) as { kind: string; nodes: NodeOut[] };
    const sb = doc.nodes.find((n) => n.role === 'standby')!.report!;
    expect(sb.steps.map((s) => s.action)).toContain('await_replay');
    expect(sb.steps.flatMap((s) => s.sql).join('\n')).not.toMatch(/ALTER ROLE/);
    const pr = doc.nodes.find((n) => n.role === 'primary')!.report!;
    expect(pr.steps.flatMap((s) => s.sql).join('\n')).toMatch(/ALTER ROLE "Mallory ""ops""" NOLOGIN/);
    const rows = await primary.sql<{ rolcanlogin: boolean }>(`SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, [ROLE]);
    expect(rows[0]!.rolcanlogin).toBe(true);
  });

  it('one cutoff ends the sessions on both nodes after the standby replayed NOLOGIN; bystanders survive; verify passes', async () => {
    const mp = [await primary.connectAs(ROLE, PW), await primary.connectAs(ROLE, PW)];
    const ms = [await standby.connectAs(ROLE, PW), await standby.connectAs(ROLE, PW), await standby.connectAs(ROLE, PW)];
    const ap = await primary.connectAs('alice', 'pw-a');
    const as = await standby.connectAs('alice', 'pw-a');

    const res = await runCli(['cutoff', ROLE, '--yes', '--json', ...targets()]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const doc = JSON.parse(res.stdout) as { kind: string; exitCode: number; nodes: NodeOut[] };
    expect(doc.kind).toBe('fleet');
    expect(doc.nodes.map((n) => [n.role, n.status])).toEqual([
      ['primary', 'contained'],
      ['standby', 'contained'],
    ]);
    const [p, s] = [doc.nodes[0]!.report!, doc.nodes[1]!.report!];
    expect(p.commitLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(s.replay?.caughtUp).toBe(true);
    expect(s.replay?.target).toBe(p.commitLsn);
    expect(s.replay?.lagBytes).toBe(0);
    // every entry carries its node
    expect(p.terminated.filter((t) => t.user === ROLE).length).toBeGreaterThanOrEqual(2);
    expect(s.terminated.filter((t) => t.user === ROLE).length).toBeGreaterThanOrEqual(3);
    expect(p.terminated.every((t) => t.node === doc.nodes[0]!.node)).toBe(true);
    expect(s.terminated.every((t) => t.node === doc.nodes[1]!.node)).toBe(true);
    expect(s.steps.every((st) => st.node === doc.nodes[1]!.node)).toBe(true);
    // the standby never ran DDL
    expect(s.steps.flatMap((st) => st.executed).join('\n')).not.toMatch(/ALTER|ROLLBACK PREPARED|REASSIGN|DROP/);

    for (const c of [...mp, ...ms]) expect(await canQuery(c)).toBe(false);
    expect(await canQuery(ap)).toBe(true);
    expect(await canQuery(as)).toBe(true);
    // new logins are refused on the standby too (replayed NOLOGIN and its own HBA block)
    await expect(standby.connectAs(ROLE, PW)).rejects.toThrow();
    const left = await standby.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`, [ROLE]);
    expect(left[0]!.n).toBe(0);

    const ver = await runCli(['verify', ROLE, '--json', ...targets()]);
    expect(ver.code, ver.stdout + ver.stderr).toBe(0);
    const vdoc = JSON.parse(ver.stdout) as { status: string; roles: { nodes: Record<string, string> }[] };
    expect(vdoc.status).toBe('contained');
    expect(Object.values(vdoc.roles[0]!.nodes)).toEqual(['contained', 'contained']);
  });

  it('a reconnect storm on both nodes: after one cutoff, no backend of the role on either and no successful query for 1 s', async () => {
    await primary.sql(`CREATE ROLE stormy LOGIN PASSWORD 'pw-s'`);
    await waitForReplay(primary, standby);
    let stop = false;
    let successes = 0;
    let logins = 0;
    // over each node's socket (trust: the fastest reconnects), as fast as it can, one query after another
    const attacker = async (node: TestCluster) => {
      while (!stop) {
        const c = new pg.Client({ host: node.socketDir, port: node.port, user: 'stormy', database: 'postgres' });
        c.on('error', () => undefined);
        try {
          await c.connect();
          logins++;
          while (!stop) {
            await c.query('SELECT 1');
            successes++;
          }
        } catch {
          /* terminated or refused: reconnect at once */
        } finally {
          await c.end().catch(() => undefined);
        }
      }
    };
    const loops = [...Array.from({ length: 20 }, () => attacker(primary)), ...Array.from({ length: 40 }, () => attacker(standby))];
    const backends = async () =>
      Promise.all(
        [primary, standby].map(
          async (n) => (await n.sql<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'stormy'`))[0]!.n,
        ),
      );
    try {
      for (let i = 0; i < 400; i++) {
        const [p, s] = await backends();
        if (logins >= 60 && p! >= 15 && s! >= 30) break;
        await sleep(50);
      }
      const res = await runCli(['cutoff', 'stormy', '--yes', '--json', '--playbook', 'contain-only', ...targets()]);
      const after = successes;
      expect(res.code, res.stdout.slice(0, 2000) + res.stderr).toBe(0);
      const doc = JSON.parse(res.stdout) as { nodes: NodeOut[] };
      expect(doc.nodes.map((n) => n.status)).toEqual(['contained', 'contained']);
      expect(doc.nodes[1]!.report!.terminated.length).toBeGreaterThanOrEqual(30);
      const end = Date.now() + 1000;
      let polls = 0;
      while (Date.now() < end) {
        expect(await backends()).toEqual([0, 0]);
        polls++;
        await sleep(25);
      }
      expect(polls).toBeGreaterThanOrEqual(3);
      expect(successes).toBe(after);
    } finally {
      stop = true;
      await Promise.all(loops);
    }
  });

  it('restore from the report, a section per node: the primary gets LOGIN back, the standby loses its HBA block; the wrong node is refused', async () => {
    await primary.sql(`CREATE ROLE rita LOGIN PASSWORD 'pw-r'`);
    await waitForReplay(primary, standby);
    const report = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-standby-restore-')), 'cutoff.json');
    const cut = await runCli(['cutoff', 'rita', '--yes', '--json', '--report', report, ...targets()]);
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    const [pNode, sNode] = [`127.0.0.1:${primary.port}`, `127.0.0.1:${standby.port}`];
    expect(readFileSync(standby.hbaFile, 'utf8')).toContain('"rita" reject');

    // the standby's section applied to the primary would do the wrong half: refused, nothing changed
    const wrong = await runCli(['restore', 'rita', '--from', report, '--node', sNode, '--yes', '--dsn', primary.dsn()]);
    expect(wrong.code, wrong.stderr).toBe(2);
    expect(wrong.stderr).toMatch(/is of a standby, but the server connected to is a primary; nothing was changed/);
    expect(readFileSync(primary.hbaFile, 'utf8')).toContain('"rita" reject');

    const rp = await runCli(['restore', 'rita', '--from', report, '--node', pNode, '--yes', '--json', '--dsn', primary.dsn()]);
    expect(rp.code, rp.stderr).toBe(0);
    expect((JSON.parse(rp.stdout) as { steps: { action: string; status: string }[] }).steps.map((x) => [x.action, x.status])).toEqual([
      ['alter_role', 'done'],
      ['hba_remove', 'done'],
      ['reload', 'done'],
    ]);
    const rs = await runCli(['restore', 'rita', '--from', report, '--node', sNode, '--yes', '--json', '--dsn', standby.dsn()]);
    expect(rs.code, rs.stderr).toBe(0);
    const sdoc = JSON.parse(rs.stdout) as { steps: { action: string; status: string; sql: string | null }[]; notes: string[] };
    expect(sdoc.steps.map((x) => [x.action, x.status])).toEqual([
      ['hba_remove', 'done'],
      ['reload', 'done'],
    ]);
    expect(sdoc.notes.join('\n')).toMatch(/standby: LOGIN.*come back by replay/);
    expect(readFileSync(standby.hbaFile, 'utf8')).not.toContain('"rita"');
    // the false alarm is over on both nodes: rita logs in on the primary, and on the standby once LOGIN replayed
    await waitForReplay(primary, standby);
    for (const node of [primary, standby]) await (await node.connectAs('rita', 'pw-r')).end();
  });

  it('restore of the whole report at once: nodes matched by name, primary first; without them it says where to point it', async () => {
    await primary.sql(`CREATE ROLE rhea LOGIN PASSWORD 'pw-rh'`);
    await waitForReplay(primary, standby);
    const report = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-standby-restore-')), 'cutoff.json');
    const cut = await runCli(['cutoff', 'rhea', '--yes', '--json', '--report', report, ...targets()]);
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);

    const nowhere = await runCli(['restore', 'rhea', '--from', report, '--yes', '--dsn', primary.dsn()]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/covers 2 nodes: say where each is/);
    const oneMissing = await runCli(['restore', 'rhea', '--from', report, '--yes', '--target', primary.dsn()]);
    expect(oneMissing.code).toBe(2);
    expect(oneMissing.stderr).toContain(`no --target or fleet node named 127.0.0.1:${standby.port}; nothing was changed`);
    expect(readFileSync(standby.hbaFile, 'utf8')).toContain('"rhea" reject');

    // on a terminal: every node's steps, one question; "no" changes nothing anywhere
    const asked = await runOnTerminal(['restore', 'rhea', '--from', report, '--target', primary.dsn(), '--target', standby.dsn()], 'n\r');
    expect(asked.code, asked.screen).toBe(2);
    expect(asked.screen).toContain(`== 127.0.0.1:${primary.port} (primary) ==`);
    expect(asked.screen).toContain(`== 127.0.0.1:${standby.port} (standby) ==`);
    expect(asked.screen).toContain('ALTER ROLE "rhea" LOGIN');
    expect(asked.screen).toContain('Apply on 2 nodes?');
    expect(asked.screen).toContain('nothing was changed');
    expect(readFileSync(standby.hbaFile, 'utf8')).toContain('"rhea" reject');
    expect(await primary.sql(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'rhea'`)).toEqual([{ l: false }]);

    // the targets in the other order: the primary is still restored first
    const all = await runCli([
      'restore',
      'rhea',
      '--from',
      report,
      '--yes',
      '--json',
      '--target',
      standby.dsn(),
      '--target',
      primary.dsn(),
    ]);
    expect(all.code, all.stdout + all.stderr).toBe(0);
    const doc = JSON.parse(all.stdout) as {
      kind: string;
      exitCode: number;
      nodes: { node: string; role: string; status: string; restore: { steps: { action: string; status: string }[] } }[];
    };
    expect(doc.kind).toBe('fleet');
    expect(doc.nodes.map((n) => [n.node, n.role, n.status, n.restore.steps.map((x) => `${x.action}:${x.status}`)])).toEqual([
      [`127.0.0.1:${primary.port}`, 'primary', 'restored', ['alter_role:done', 'hba_remove:done', 'reload:done']],
      [`127.0.0.1:${standby.port}`, 'standby', 'restored', ['hba_remove:done', 'reload:done']],
    ]);
    await waitForReplay(primary, standby);
    for (const node of [primary, standby]) await (await node.connectAs('rhea', 'pw-rh')).end();
  });

  it('guard over both nodes ends a session on the standby once NOLOGIN set on the primary has replayed', async () => {
    await primary.sql(`CREATE ROLE gina LOGIN PASSWORD 'pw-g'`);
    let c: pg.Client | null = null;
    for (let i = 0; i < 100 && !c; i++) c = await standby.connectAs('gina', 'pw-g').catch(() => sleep(50).then(() => null));
    expect(c).not.toBeNull();
    await primary.sql(`ALTER ROLE gina NOLOGIN`);
    for (let i = 0; i < 100; i++) {
      const rows = await standby.sql<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'gina'`);
      if (rows[0]!.l === false) break;
      await sleep(50);
    }
    const res = await runCli(['guard', '--once', '--json', ...targets()]);
    expect(res.code, res.stderr).toBe(1);
    const events = res.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; node: string; role: string; reason: string });
    expect(events).toEqual([
      expect.objectContaining({ event: 'kill', node: `127.0.0.1:${standby.port}`, role: 'gina', reason: 'role_nologin' }),
    ]);
    expect(await canQuery(c!)).toBe(false);
  });

  it('a standby whose replay is paused: its sessions are still ended, the lag and the open door are reported (exit 1)', async () => {
    await primary.sql(`CREATE ROLE lagger LOGIN PASSWORD 'pw-l'`);
    let c: pg.Client | null = null;
    for (let i = 0; i < 100 && !c; i++) c = await standby.connectAs('lagger', 'pw-l').catch(() => sleep(50).then(() => null));
    expect(c).not.toBeNull();
    await standby.sql('SELECT pg_wal_replay_pause()');
    try {
      const res = await runCli([
        'cutoff',
        'lagger',
        '--yes',
        '--json',
        '--playbook',
        'contain-only',
        '--settle-timeout',
        '1',
        ...targets(),
      ]);
      expect(res.code, res.stdout + res.stderr).toBe(1);
      const doc = JSON.parse(res.stdout) as { exposure: string[]; nodes: NodeOut[] };
      expect(doc.nodes.map((n) => n.status)).toEqual(['contained', 'exposed']);
      const s = doc.nodes[1]!.report!;
      expect(s.replay?.caughtUp).toBe(false);
      expect(s.replay?.lagBytes).toBeGreaterThan(0);
      expect(s.terminated.map((t) => t.user)).toContain('lagger');
      expect(doc.exposure.join('\n')).toMatch(/had not replayed the primary's NOLOGIN after 1 s \(\d+ bytes behind\)/);
      expect(doc.exposure.join('\n')).toMatch(/"lagger" can still log in on this standby/);
      expect(await canQuery(c!)).toBe(false);
    } finally {
      await standby.sql('SELECT pg_wal_replay_resume()');
    }
    // once replay resumes the standby refuses the role too, and verify over both passes
    for (let i = 0; i < 100; i++) {
      const rows = await standby.sql<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'lagger'`);
      if (rows[0]!.l === false) break;
      await sleep(50);
    }
    const ver = await runCli(['verify', 'lagger', ...targets()]);
    expect(ver.code, ver.stdout + ver.stderr).toBe(0);
  });

  it('a cascading standby (streaming from the standby) is matched to the primary, waits for the same commit, and is contained too', async () => {
    await primary.sql(`CREATE ROLE casey LOGIN PASSWORD 'pw-c'`);
    await waitForReplay(primary, standby);
    const cascade = await startStandby(standby);
    try {
      const [wr] = await cascade.sql<{ port: number }>('SELECT sender_port AS port FROM pg_stat_wal_receiver');
      expect(wr!.port).toBe(standby.port);
      await waitForReplay(primary, cascade);
      const sessions = [
        await primary.connectAs('casey', 'pw-c'),
        await standby.connectAs('casey', 'pw-c'),
        await cascade.connectAs('casey', 'pw-c'),
      ];
      const bystander = await cascade.connectAs('alice', 'pw-a');
      const res = await runCli([
        'cutoff',
        'casey',
        '--yes',
        '--json',
        '--playbook',
        'contain-only',
        ...targets(),
        '--target',
        cascade.dsn(),
      ]);
      expect(res.code, res.stdout + res.stderr).toBe(0);
      const doc = JSON.parse(res.stdout) as { nodes: NodeOut[] };
      expect(doc.nodes.map((n) => [n.role, n.status])).toEqual([
        ['primary', 'contained'],
        ['standby', 'contained'],
        ['standby', 'contained'],
      ]);
      const c = doc.nodes[2]!.report!;
      expect(c.replay).toMatchObject({ caughtUp: true, target: doc.nodes[0]!.report!.commitLsn });
      expect(c.terminated.map((t) => t.user)).toContain('casey');
      for (const x of sessions) expect(await canQuery(x)).toBe(false);
      expect(await canQuery(bystander)).toBe(true);
      await expect(cascade.connectAs('casey', 'pw-c')).rejects.toThrow();
    } finally {
      await cascade.destroyAll();
    }
  });

  it('the primary named but down: the standby is still contained (sessions ended, its own HBA rejects), exit 3, NOLOGIN reported missing', async () => {
    await primary.sql(`CREATE ROLE dora LOGIN PASSWORD 'pw-d'`);
    await waitForReplay(primary, standby);
    const s1 = await standby.connectAs('dora', 'pw-d');
    const bystander = await standby.connectAs('alice', 'pw-a');
    const down = `postgresql://postgres:${primary.password}@127.0.0.1:${await freePort()}/postgres`;
    const res = await runCli(['cutoff', 'dora', '--yes', '--json', '--target', down, '--target', standby.dsn()]);
    expect(res.code, res.stdout + res.stderr).toBe(3);
    const doc = JSON.parse(res.stdout) as { exposure: string[]; nodes: NodeOut[] };
    expect(doc.nodes.map((n) => [n.role, n.status])).toEqual([
      [null, 'unreachable'],
      ['standby', expect.stringMatching(/^(exposed|partial)$/)],
    ]);
    const s = doc.nodes[1]!.report!;
    expect(s.terminated.map((t) => t.user)).toContain('dora');
    expect(s.steps.find((x) => x.action === 'hba_reject')?.status).toBe('done');
    // no NOLOGIN is coming: the settle loop does not wait out its timeout for one before HBA
    expect(s.steps.find((x) => x.action === 'settle')?.detail).not.toMatch(/TIMED OUT/);
    expect(doc.exposure.join('\n')).toMatch(
      /did not commit NOLOGIN: the role keeps LOGIN, and on this standby only the pgrevoke block in pg_hba\.conf rejects it/,
    );
    expect(doc.exposure.join('\n')).not.toMatch(/still accepts new logins/);
    expect(await canQuery(s1)).toBe(false);
    expect(await canQuery(bystander)).toBe(true);
    // new logins on the standby are refused by its own pg_hba.conf, though the role is still LOGIN
    await expect(standby.connectAs('dora', 'pw-d')).rejects.toThrow(/pg_hba\.conf rejects connection/);
    expect(await primary.sql(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'dora'`)).toEqual([{ l: true }]);
    await (await standby.connectAs('alice', 'pw-a')).end();
  });

  it('a standby alone is refused (exit 2): its primary must be named too', async () => {
    const res = await runCli(['cutoff', 'alice', '--yes', '--dsn', standby.dsn()]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/standby, and its primary is not among the targets/);
    const rows = await primary.sql<{ rolcanlogin: boolean }>(`SELECT rolcanlogin FROM pg_roles WHERE rolname = 'alice'`);
    expect(rows[0]!.rolcanlogin).toBe(true);
  });
});
