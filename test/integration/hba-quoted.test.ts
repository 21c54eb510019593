// Issue 12, items 1 and 2, against real servers: each minimal pg_hba.conf is written and reloaded, then
// `pgrevoke inspect <role> --json` is asked about one connection and the same login is really made.
// They must agree on the outcome (and, for an admitted login, on the line).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { runCli } from '../helpers/cli.js';
import { loginOutcome, MAJORS, reloadAndWait, startCluster, type TestCluster } from '../helpers/cluster.js';

/** First, so the harness (socket trust, TCP postgres) still connects; rules under test start at line 3. */
const BASE = 'local all all trust\nhost all postgres 127.0.0.1/32 scram-sha-256\n';

interface Decision {
  scenario: { transport: string; database: string; address: string | null; ssl: boolean; replication: boolean };
  user: string;
  connectionType: string;
  outcome: string;
  line: number | null;
  reason: string | null;
}
interface Doc {
  hba: { decisions: Decision[]; rawSource: string | null };
  findings: { id: string; severity: string; detail: string }[];
}

describe.each(MAJORS)('quoted pg_hba.conf tokens and unevaluated connections on PostgreSQL %i', (major) => {
  let cl: TestCluster;

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.sql(`CREATE ROLE staff NOLOGIN`);
    await cl.sql(`CREATE ROLE alice LOGIN`);
    await cl.sql(`GRANT staff TO alice`);
    await cl.sql(`CREATE ROLE dave LOGIN REPLICATION`);
    await cl.sql(`CREATE ROLE eve LOGIN SUPERUSER`);
    await cl.sql(`CREATE DATABASE replication`);
    await cl.sql(`CREATE DATABASE alice`);
  });

  afterAll(async () => {
    await cl?.destroyAll();
  });

  async function hba(lines: string): Promise<void> {
    await cl.writeDataFile('pg_hba.conf', BASE + lines + '\n');
    await reloadAndWait(cl);
    const errors = await cl.sql<{ error: string }>(`SELECT error FROM pg_hba_file_rules WHERE error IS NOT NULL`);
    expect(errors).toEqual([]);
  }

  async function inspect(role: string): Promise<Doc> {
    const r = await runCli(['inspect', role, '--dsn', cl.dsn(), '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Doc;
  }

  /** inspect's decision for a TCP login from 127.0.0.1 without SSL. */
  function decision(doc: Doc, database: string, replication = false, address = '127.0.0.1'): Decision {
    const hits = doc.hba.decisions.filter(
      (d) =>
        d.scenario.transport === 'host' &&
        d.scenario.address === address &&
        !d.scenario.ssl &&
        d.scenario.database === database &&
        d.scenario.replication === replication,
    );
    expect(hits, `one decision for ${database} replication=${replication} from ${address}`).toHaveLength(1);
    return hits[0]!;
  }

  /** The real login: 'allow' or the server's refusal (28000: no pg_hba.conf entry or rejected). */
  const login = (user: string, database: string, replication = false) =>
    loginOutcome(cl, { user, database, ...(replication ? { replication: true } : {}) } as pg.ClientConfig);

  const refused = (outcome: string) => (outcome === 'reject' || outcome === 'no_match' ? '28000' : outcome);

  it('"+staff" is a role named +staff: alice gets in through the trust line, and is not called rejected', async () => {
    await hba('host all "+staff" 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 trust');
    const doc = await inspect('alice');
    expect(doc.hba.rawSource).toBe('server');
    expect(decision(doc, 'postgres')).toMatchObject({ outcome: 'allow', line: 4, user: 'alice', connectionType: 'hostnossl' });
    expect(await login('alice', 'postgres')).toBe('allow');
    expect(doc.findings.find((f) => f.id === 'role.can_login')?.severity).toBe('critical');
  });

  it('"all" in the user column is a role named all', async () => {
    await hba('host all "all" 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 trust');
    const doc = await inspect('alice');
    expect(decision(doc, 'postgres')).toMatchObject({ outcome: 'allow', line: 4 });
    expect(await login('alice', 'postgres')).toBe('allow');
  });

  it('"all" in the database column is a database named all: no entry for postgres', async () => {
    await hba('host "all" alice 127.0.0.0/8 trust');
    const d = decision(await inspect('alice'), 'postgres');
    expect(d.outcome).toBe('no_match');
    expect(await login('alice', 'postgres')).toBe(refused(d.outcome));
  });

  it('"replication" admits a normal login to the database named replication, never physical replication', async () => {
    await hba('host "replication" dave 127.0.0.0/8 trust');
    const doc = await inspect('dave');
    const normal = decision(doc, 'replication');
    const physical = decision(doc, 'replication', true);
    expect([normal.outcome, normal.line, physical.outcome]).toEqual(['allow', 3, 'no_match']);
    expect(await login('dave', 'replication')).toBe('allow');
    expect(await login('dave', 'replication', true)).toBe(refused(physical.outcome));
  });

  it('"sameuser" is a database named sameuser: alice is refused into database alice', async () => {
    await hba('host "sameuser" alice 127.0.0.1/32 trust');
    const d = decision(await inspect('alice'), 'alice');
    expect(d.outcome).toBe('no_match');
    expect(await login('alice', 'alice')).toBe(refused(d.outcome));
  });

  it('template1 is evaluated (and template0, which takes no login, is not)', async () => {
    await hba('host template1 alice 127.0.0.1/32 trust');
    const doc = await inspect('alice');
    expect(decision(doc, 'template1')).toMatchObject({ outcome: 'allow', line: 3 });
    expect(doc.hba.decisions.some((d) => d.scenario.database === 'template0')).toBe(false);
    expect(doc.findings.some((f) => f.id === 'hba.not_rejected')).toBe(true);
    expect(await login('alice', 'template1')).toBe('allow');
    expect(await login('alice', 'template0')).not.toBe('allow');
  });

  it('a superuser without REPLICATION may stream: replication is evaluated for it', async () => {
    await hba('host replication eve 127.0.0.1/32 trust');
    const d = decision(await inspect('eve'), 'replication', true);
    expect(d).toMatchObject({ outcome: 'allow', line: 3 });
    expect(await login('eve', 'replication', true)).toBe('allow');
  });

  // include, include_if_exists and include_dir exist from 16 on
  if (major >= 16)
    it('16+: rules in included files are read with their quotes (include, include_if_exists, include_dir)', async () => {
      await cl.writeDataFile('extra.conf', 'host all "+staff" 0.0.0.0/0 reject\n');
      await mkdir(path.join(cl.dataDir, 'hba.d'), { recursive: true, mode: 0o755 });
      await cl.writeDataFile('hba.d/10-more.conf', 'host "all" alice 127.0.0.1/32 reject\n');
      await hba('include extra.conf\ninclude_if_exists missing.conf\ninclude_dir hba.d\nhost all all 0.0.0.0/0 trust');
      const doc = await inspect('alice');
      expect(doc.hba.rawSource).toBe('server');
      expect(doc.findings.map((f) => f.id)).not.toContain('hba.file_mismatch');
      // neither included line matches (a role named "+staff", a database named "all"): the trust line admits her
      expect(decision(doc, 'postgres')).toMatchObject({ outcome: 'allow' });
      expect(await login('alice', 'postgres')).toBe('allow');
    });

  it('an allowing range no session came from is sampled and reported', async () => {
    await hba('host all alice 10.0.0.0/8 trust');
    const doc = await inspect('alice');
    expect(decision(doc, 'postgres', false, '10.0.0.1')).toMatchObject({ outcome: 'allow', line: 3 });
    const nr = doc.findings.find((f) => f.id === 'hba.not_rejected')!;
    expect(nr.severity).toBe('high');
    expect(nr.detail).toMatch(/line 3 .*10\.0\.0\.1/);
    // and the real loopback login is refused, as its own decision says
    expect(await login('alice', 'postgres')).toBe(refused(decision(doc, 'postgres').outcome));
  });
});
