// A fleet file naming three clusters, one of them down: the other two are contained, the exit code
// is 3, and the report names the down one. verify and inspect over the same fleet; --only selects.
import { promises as fs, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/embedded/cluster.js';
import { runCli, runOnTerminal, startCli, startOnTerminal } from '../helpers/cli.js';
import { canQuery, MAJORS, parkLogin, startCluster, type TestCluster } from '../helpers/cluster.js';
import { Screen } from '../helpers/screen.js';

const ROLE = 'Eve ünïcode';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PW = 'pw-eve';

interface FleetDoc {
  kind: string;
  exitCode: number;
  exposure: string[];
  nodes: {
    node: string;
    cluster: string;
    role: string | null;
    status: string;
    error: string | null;
    report: { terminated: { node: string }[] } | null;
  }[];
}

describe('cutoff, verify and inspect over a fleet file with one cluster down', () => {
  const clusters: TestCluster[] = [];
  let dir = '';
  let fleetFile = '';
  let downPort = 0;

  beforeAll(async () => {
    // two majors side by side: the fleet is not one version
    for (const major of [MAJORS[0]!, MAJORS[MAJORS.length - 1]!]) {
      const cl = await startCluster(major);
      await cl.sql(`CREATE ROLE "${ROLE}" LOGIN PASSWORD '${PW}'`);
      await cl.sql(`CREATE ROLE bob LOGIN PASSWORD 'pw-bob'`);
      clusters.push(cl);
    }
    downPort = await freePort(); // nothing listens here
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-fleet-'));
    fleetFile = path.join(dir, 'fleet.yaml');
    await fs.writeFile(
      fleetFile,
      `# three clusters; "legacy" is down
clusters:
  - name: billing
    tags: [prod, eu]
    nodes:
      - dsn: ${clusters[0]!.dsn()}
        name: billing-1
  - name: search
    tags: [prod]
    nodes:
      - ${clusters[1]!.dsn()}
  - name: legacy
    tags: [old]
    nodes:
      - dsn: postgresql://postgres:super-secret-pw@127.0.0.1:${downPort}/postgres
        name: legacy-1
`,
    );
  }, 120_000);

  afterAll(async () => {
    for (const c of clusters) await c.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('inspect over the fleet: one section per node, the down one named, exit 3', async () => {
    const res = await runCli(['inspect', ROLE, '--json', '--fleet', fleetFile]);
    expect(res.code, res.stderr).toBe(3);
    const doc = JSON.parse(res.stdout) as { kind: string; nodes: { node: string; cluster: string; status: string; error: string }[] };
    expect(doc.nodes.map((n) => [n.node, n.cluster, n.status])).toEqual([
      ['billing-1', 'billing', 'ok'],
      [`127.0.0.1:${clusters[1]!.port}`, 'search', 'ok'],
      ['legacy-1', 'legacy', 'unreachable'],
    ]);
    expect(doc.nodes[2]!.error).toMatch(/SQLSTATE 08/);
    expect(res.stdout + res.stderr).not.toContain('super-secret-pw');
  });

  it('nodes named by service= (pg_service.conf, password from the passfile): verify reads them like DSN nodes', async () => {
    const services = path.join(dir, 'pg_service.conf');
    const passfile = path.join(dir, 'pgpass');
    await fs.writeFile(
      services,
      clusters.map((c, i) => `[svc-${i}]\nhost=127.0.0.1\nport=${c.port}\nuser=postgres\ndbname=postgres\n`).join(''),
    );
    await fs.writeFile(passfile, `127.0.0.1:*:*:postgres:super-secret-pw\n`, { mode: 0o600 });
    const svcFleet = path.join(dir, 'services.yaml');
    await fs.writeFile(
      svcFleet,
      `clusters:
  - name: billing
    nodes: [{ service: svc-0, name: billing-svc }]
  - name: search
    nodes: [{ service: svc-1 }]
`,
    );
    const res = await runCli(['verify', ROLE, '--json', '--fleet', svcFleet], { PGSERVICEFILE: services, PGPASSFILE: passfile });
    expect(res.code, res.stdout + res.stderr).toBe(1); // the role can still log in on both: exposed
    const doc = JSON.parse(res.stdout) as { roles: { nodes: Record<string, string> }[] };
    expect(Object.keys(doc.roles[0]!.nodes).sort()).toEqual(['127.0.0.1:' + clusters[1]!.port, 'billing-svc'].sort());
    const missing = await runCli(['verify', ROLE, '--fleet', svcFleet], {
      PGSERVICEFILE: path.join(dir, 'nope.conf'),
      PGPASSFILE: passfile,
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/svc-0/);
  });

  it('a role on one cluster only: the other says absent, which is not a failure (inspect exit 0)', async () => {
    await clusters[0]!.sql(`CREATE ROLE onlyhere LOGIN PASSWORD 'pw-o'`);
    const res = await runCli(['inspect', 'onlyhere', '--json', '--fleet', fleetFile, '--only', 'prod']);
    expect(res.code, res.stderr).toBe(0);
    const doc = JSON.parse(res.stdout) as { verdict: string; nodes: { status: string }[] };
    expect(doc.nodes.map((n) => n.status)).toEqual(['ok', 'absent']);
    expect(doc.verdict).toBe('exposed'); // it can still log in on billing
    const none = await runCli(['inspect', 'nobody-at-all', '--json', '--fleet', fleetFile, '--only', 'prod']);
    expect(none.code).toBe(2);
    // cutoff the same way: contained where it exists, absent elsewhere, exit 0
    const cut = await runCli([
      'cutoff',
      'onlyhere',
      '--yes',
      '--json',
      '--playbook',
      'contain-only',
      '--fleet',
      fleetFile,
      '--only',
      'prod',
    ]);
    expect(cut.code, cut.stdout + cut.stderr).toBe(0);
    expect((JSON.parse(cut.stdout) as { nodes: { status: string }[] }).nodes.map((n) => n.status)).toEqual(['contained', 'absent']);
    expect(await clusters[0]!.sql(`SELECT rolcanlogin FROM pg_roles WHERE rolname = 'onlyhere'`)).toEqual([{ rolcanlogin: false }]);
  });

  it('cutoff contains the two that answer, exits 3, and the report and audit log name every node', async () => {
    const eves = [await clusters[0]!.connectAs(ROLE, PW), await clusters[0]!.connectAs(ROLE, PW), await clusters[1]!.connectAs(ROLE, PW)];
    const bobs = [await clusters[0]!.connectAs('bob', 'pw-bob'), await clusters[1]!.connectAs('bob', 'pw-bob')];
    const report = path.join(dir, 'report.json');
    const audit = path.join(dir, 'audit.jsonl');
    const markdown = path.join(dir, 'ticket.md');
    const res = await runCli([
      'cutoff',
      ROLE,
      '--yes',
      '--json',
      '--fleet',
      fleetFile,
      '--playbook',
      'contain-only',
      '--report',
      report,
      '--audit-log',
      audit,
      '--markdown',
      markdown,
      '--reason',
      'INC-7',
    ]);
    expect(res.code, res.stdout + res.stderr).toBe(3);
    const doc = JSON.parse(res.stdout) as FleetDoc;
    expect(doc.kind).toBe('fleet');
    expect(doc.exitCode).toBe(3);
    expect(doc.nodes.map((n) => [n.cluster, n.role, n.status])).toEqual([
      ['billing', 'primary', 'contained'],
      ['search', 'primary', 'contained'],
      ['legacy', null, 'unreachable'],
    ]);
    expect(doc.exposure.join('\n')).toMatch(/legacy-1: not contained \(unreachable\)/);
    for (const n of doc.nodes.slice(0, 2)) expect(n.report!.terminated.every((t) => t.node === n.node)).toBe(true);
    // every entry of a node's section names the node: rows copied out of the JSON still say where they came from
    const unstamped = (v: unknown, node: string, inArray = false): number =>
      Array.isArray(v)
        ? v.reduce<number>((a, x) => a + unstamped(x, node, true), 0)
        : v && typeof v === 'object'
          ? (inArray && (v as { node?: string }).node !== node ? 1 : 0) +
            Object.values(v).reduce<number>((a, x) => a + unstamped(x, node), 0)
          : 0;
    for (const n of doc.nodes.slice(0, 2)) {
      expect(JSON.stringify(n.report)).toMatch(/"sessions":\[\{/);
      expect(unstamped(n.report, n.node)).toBe(0);
    }
    for (const c of eves) expect(await canQuery(c)).toBe(false);
    for (const c of bobs) expect(await canQuery(c)).toBe(true);
    for (const cl of clusters)
      expect((await cl.sql<{ rolcanlogin: boolean }>(`SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, [ROLE]))[0]!.rolcanlogin).toBe(
        false,
      );

    // the same document on disk, owner-only; no password anywhere
    expect(JSON.parse(readFileSync(report, 'utf8'))).toMatchObject({ kind: 'fleet', exitCode: 3 });
    expect(statSync(report).mode & 0o077).toBe(0);
    const lines = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { node: string; note: string });
    expect(new Set(lines.map((l) => l.node))).toEqual(new Set(['billing-1', `127.0.0.1:${clusters[1]!.port}`]));
    // the ticket: a summary table naming the down node, then one section per node that ran
    const md = readFileSync(markdown, 'utf8');
    expect(md).toMatch(/^# pgrevoke cutoff: `Eve ünïcode` on 3 nodes/);
    expect(md).toMatch(/\| legacy-1 \| legacy \| \? \| unreachable \|/);
    expect(md.match(/^## pgrevoke cutoff: /gm)).toHaveLength(2);
    expect(statSync(markdown).mode & 0o077).toBe(0);
    expect(lines.every((l) => l.note === 'INC-7')).toBe(true);
    expect(res.stdout + res.stderr + readFileSync(report, 'utf8') + readFileSync(audit, 'utf8')).not.toContain('super-secret-pw');
    // text progress: one line per node on stderr (not in JSON mode); checked with a dry run below
  });

  it('text mode prints one progress line per node', async () => {
    const res = await runCli(['cutoff', ROLE, '--dry-run', '--fleet', fleetFile]);
    expect(res.code).toBe(3);
    const progress = res.stderr.split('\n').filter((l) => l.startsWith('pgrevoke: '));
    expect(progress.filter((l) => /billing-1 \(primary\): planned/.test(l))).toHaveLength(1);
    expect(progress.filter((l) => /\(primary\): planned/.test(l))).toHaveLength(2);
    expect(res.stdout).toMatch(/legacy-1.*UNREACHABLE/);
  });

  it('verify over the fleet: 3 while a cluster is down; --only prod (the two reachable ones): 0', async () => {
    const all = await runCli(['verify', ROLE, '--fleet', fleetFile]);
    expect(all.code, all.stdout + all.stderr).toBe(3);
    expect(all.stdout).toMatch(/legacy-1 not verified \(unreachable\)/);
    // text mode: one progress line per node on stderr
    const lines = all.stderr.split('\n').filter((l) => l.startsWith('pgrevoke: '));
    expect(lines).toHaveLength(3);
    expect(lines.filter((l) => /^pgrevoke: billing-1: primary, contained$/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^pgrevoke: legacy-1: unreachable, /.test(l))).toHaveLength(1);
    const prod = await runCli(['verify', ROLE, '--json', '--fleet', fleetFile, '--only', 'prod']);
    expect(prod.code, prod.stdout + prod.stderr).toBe(0);
    const doc = JSON.parse(prod.stdout) as { status: string; nodes: { node: string }[] };
    expect(doc.status).toBe('contained');
    expect(doc.nodes).toHaveLength(2);
  });

  it('on a terminal the plans of every node are shown before one question; "no" changes nothing anywhere', async () => {
    for (const cl of clusters) await cl.sql(`ALTER ROLE bob LOGIN`);
    const r = await runOnTerminal(['cutoff', 'bob', '--show-sql', '--fleet', fleetFile, '--only', 'prod'], 'n\r');
    expect(r.code, r.screen).toBe(2);
    expect(r.screen.match(/Cutoff plan compromised-credential on /g)).toHaveLength(2);
    expect(r.screen).toContain('on billing-1 (PostgreSQL');
    expect(r.screen).toMatch(/to "bob" on 2 nodes now\?/);
    expect(r.screen).toContain('nothing was changed');
    for (const cl of clusters)
      expect((await cl.sql<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'bob'`))[0]!.l).toBe(true);
  });

  it('SIGINT while one node still settles: every node stops after its statement, the fleet report is written, exit 3', async () => {
    for (const cl of clusters) await cl.sql(`CREATE ROLE sig LOGIN PASSWORD 'pw-sig'`);
    // a backend of sig held in the post-authentication window on billing keeps its settle loop open
    const hidden = await parkLogin(clusters[0]!, 'sig', 'pw-sig');
    const report = path.join(dir, 'sig-report.json');
    const child = startCli(
      [
        'cutoff',
        'sig',
        '--yes',
        '--json',
        '--fleet',
        fleetFile,
        '--only',
        'prod',
        '--hidden-grace',
        '600000',
        '--settle-timeout',
        '120',
        '--report',
        report,
      ],
      {},
      { timeoutMs: 90_000 },
    );
    const nologin = async () =>
      (
        await Promise.all(clusters.map((cl) => cl.sql<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'sig'`)))
      ).every((r) => r[0]!.l === false);
    for (let i = 0; i < 200 && !(await nologin()); i++) await sleep(50);
    await sleep(400);
    child.signal('SIGINT');
    const code = await child.exited;
    expect(code, child.stdout() + child.stderr()).toBe(3);
    const doc = JSON.parse(child.stdout()) as FleetDoc & { nodes: { report: { interrupted: boolean } | null }[] };
    expect(JSON.parse(readFileSync(report, 'utf8'))).toEqual(doc);
    expect(doc.nodes[0]).toMatchObject({ node: 'billing-1', status: 'partial' });
    expect(doc.nodes[0]!.report!.interrupted).toBe(true);
    expect(['contained', 'partial']).toContain(doc.nodes[1]!.status);
    void hidden.client.end().catch(() => undefined); // its login is still asleep: do not wait for it
  });

  it('guard --once over the fleet ends a NOLOGIN role session on the cluster it is on', async () => {
    await clusters[1]!.sql(`CREATE ROLE gone LOGIN PASSWORD 'pw-g'`);
    const c = await clusters[1]!.connectAs('gone', 'pw-g');
    await clusters[1]!.sql(`ALTER ROLE gone NOLOGIN`);
    const res = await runCli(['guard', '--once', '--json', '--fleet', fleetFile, '--only', 'prod']);
    expect(res.code, res.stderr).toBe(1);
    const events = res.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; node: string; role: string });
    expect(events).toEqual([expect.objectContaining({ event: 'kill', node: `127.0.0.1:${clusters[1]!.port}`, role: 'gone' })]);
    expect(await canQuery(c)).toBe(false);
  });

  it('an operator without privileges on one cluster: that node is refused and untouched, the other contained, exit 3', async () => {
    for (const cl of clusters) await cl.sql(`CREATE ROLE priv LOGIN PASSWORD 'pw-priv'`);
    await clusters[1]!.sql(`CREATE ROLE weakop LOGIN PASSWORD 'pw-weak'`);
    const mixed = path.join(dir, 'mixed.yaml');
    await fs.writeFile(
      mixed,
      `clusters:
  - name: billing
    nodes: [${clusters[0]!.dsn()}]
  - name: search
    nodes: ["postgresql://weakop:pw-weak@127.0.0.1:${clusters[1]!.port}/postgres"]
`,
    );
    const onSearch = await clusters[1]!.connectAs('priv', 'pw-priv');
    const res = await runCli(['cutoff', 'priv', '--yes', '--json', '--fleet', mixed, '--playbook', 'contain-only']);
    expect(res.code, res.stdout + res.stderr).toBe(3);
    const doc = JSON.parse(res.stdout) as FleetDoc;
    expect(doc.nodes.map((n) => [n.cluster, n.status])).toEqual([
      ['billing', 'contained'],
      ['search', 'refused'],
    ]);
    expect(doc.nodes[1]!.error).toMatch(/weakop cannot .*\[SQLSTATE 42501\].*hint:/);
    expect(res.stdout).not.toContain('pw-weak');
    const login = async (cl: TestCluster) =>
      (await cl.sql<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'priv'`))[0]!.l;
    expect(await login(clusters[0]!)).toBe(false);
    expect(await login(clusters[1]!)).toBe(true);
    expect(await canQuery(onSearch)).toBe(true);
  });

  it('sessions --watch over the fleet: a node column, the down node named, selection across nodes, K y ends the session on its own node; Ctrl+C exits 0', async () => {
    const onBilling = await clusters[0]!.connectAs('bob', 'pw-bob', 'postgres', { application_name: 'bob-watch' });
    const onSearch = await clusters[1]!.connectAs('bob', 'pw-bob', 'postgres', { application_name: 'bob-watch' });
    const pidOf = async (c: typeof onSearch) => (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
    const [billingPid, searchPid] = [await pidOf(onBilling), await pidOf(onSearch)];
    const search = `127.0.0.1:${clusters[1]!.port}`;
    const t = startOnTerminal(['sessions', '--fleet', fleetFile, '--application', 'bob-watch', '--watch', '0.2'], 60_000, {
      columns: 100,
      rows: 24,
    });
    const s = new Screen(t, 100, 24);
    const rows = (lines: string[]) =>
      lines.flatMap((l) => {
        const m = /^([> ]) (\S+) +(\d+) +bob\b/.exec(l);
        return m ? [{ selected: m[1] === '>', node: m[2]!, pid: Number(m[3]) }] : [];
      });
    const last = (lines: string[]) => lines[lines.length - 1]!;
    const lines = await s.until('a row per node up', (l) => rows(l).length === 2);
    expect(lines[0]).toMatch(/^pgrevoke sessions {2}3 nodes /);
    expect(lines).toContainEqual(expect.stringMatching(/^legacy-1: unreachable: /));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}node +pid user/));
    expect(
      rows(lines)
        .map((r) => `${r.node}:${r.pid}`)
        .sort(),
    ).toEqual([`billing-1:${billingPid}`, `${search}:${searchPid}`].sort());
    if (rows(lines).find((r) => r.selected)?.node !== search) t.type('j');
    await s.until("the search node's row selected", (l) => rows(l).find((r) => r.selected)?.node === search);
    t.type('K');
    await s.until('the confirmation naming NODE:PID', (l) => last(l) === `terminate pid ${search}:${searchPid} (bob@postgres)? y/N`);
    t.type('y');
    await s.until('the outcome', (l) => last(l).startsWith(`ok terminated pid ${search}:${searchPid}`));
    expect(await canQuery(onSearch)).toBe(false);
    expect(await canQuery(onBilling)).toBe(true);
    t.type('\x03');
    expect(await t.exited).toBe(0);
    expect(t.screen()).not.toContain('super-secret-pw');
    await onBilling.end();
  });

  it('sessions over the fleet lists each node apart; kill takes NODE:PID with the fleet node name; a plain pid is ambiguous', async () => {
    const c = await clusters[0]!.connectAs('bob', 'pw-bob', 'postgres', { application_name: 'bob-fleet' });
    const pid = (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
    const list = await runCli(['sessions', '--json', '--fleet', fleetFile, '--only', 'prod', '--application', 'bob-fleet']);
    expect(list.code, list.stderr).toBe(0);
    const ldoc = JSON.parse(list.stdout) as {
      kind: string;
      nodes: { node: string; role: string; value: { sessions: { node: string; pid: number }[] } }[];
    };
    expect(ldoc.nodes.map((n) => [n.node, n.role, n.value.sessions.map((x) => [x.node, x.pid])])).toEqual([
      ['billing-1', 'primary', [['billing-1', pid]]],
      [`127.0.0.1:${clusters[1]!.port}`, 'primary', []],
    ]);
    const plain = await runCli(['kill', String(pid), '--yes', '--fleet', fleetFile, '--only', 'prod']);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('billing-1');
    const res = await runCli(['kill', `billing-1:${pid}`, '--yes', '--json', '--fleet', fleetFile, '--only', 'prod']);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect((JSON.parse(res.stdout) as { results: { node: string; pid: number; ok: boolean }[] }).results).toEqual([
      expect.objectContaining({ node: 'billing-1', pid, ok: true }),
    ]);
    expect(await canQuery(c)).toBe(false);
  });

  it('a role that exists on no node of the fleet: exit 2, nothing changed', async () => {
    const res = await runCli(['cutoff', 'nobody-here', '--yes', '--fleet', fleetFile, '--only', 'prod']);
    expect(res.code).toBe(2);
    expect(res.stdout).toMatch(/billing-1 .*ABSENT/);
  });

  it('restore of the fleet report with the same fleet file: the down node listed as untouched; --only restores the selected clusters only', async () => {
    const report = path.join(dir, 'report.json'); // the cutoff above, legacy down
    const dry = await runCli(['restore', ROLE, '--from', report, '--dry-run', '--json', '--fleet', fleetFile]);
    expect(dry.code, dry.stdout + dry.stderr).toBe(0);
    const ddoc = JSON.parse(dry.stdout) as { nodes: { node: string; status: string }[]; untouched: { node: string; why: string }[] };
    expect(ddoc.nodes.map((n) => [n.node, n.status])).toEqual([
      ['billing-1', 'planned'],
      [`127.0.0.1:${clusters[1]!.port}`, 'planned'],
    ]);
    expect(ddoc.untouched).toEqual([{ node: 'legacy-1', why: 'unreachable: the cutoff changed nothing there' }]);
    const login = async (cl: TestCluster) =>
      (await cl.sql<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [ROLE]))[0]!.l;
    expect([await login(clusters[0]!), await login(clusters[1]!)]).toEqual([false, false]);

    const eu = await runCli(['restore', ROLE, '--from', report, '--yes', '--fleet', fleetFile, '--only', 'eu']);
    expect(eu.code, eu.stdout + eu.stderr).toBe(0);
    expect(eu.stdout).toMatch(
      /== billing-1 \(primary\) ==\nRestore of "Eve ünïcode" \(oid \d+\) from .*\nDONE +alter_role: ALTER ROLE "Eve ünïcode" LOGIN/,
    );
    expect(eu.stdout).toContain(`127.0.0.1:${clusters[1]!.port}: not selected by --only`);
    expect(eu.stdout).toContain('legacy-1: unreachable: the cutoff changed nothing there');
    expect([await login(clusters[0]!), await login(clusters[1]!)]).toEqual([true, false]);
    await (await clusters[0]!.connectAs(ROLE, PW)).end();
  });
});
