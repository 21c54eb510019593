// restore after a false alarm: what cutoff changed comes back, on real servers, via the CLI.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

describe.each(MAJORS)('restore on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'restore-'));
  const report = path.join(dir, `cutoff-${major}.json`);
  const attrs = async () =>
    (
      await cl.sql<{ rolcanlogin: boolean; rolsuper: boolean; rolconnlimit: number }>(
        `SELECT rolcanlogin, rolsuper, rolconnlimit FROM pg_roles WHERE rolname = 'Ops "Lead"'`,
      )
    )[0];

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.writeDataFile('pg_hba.conf', 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n');
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE "Ops ""Lead""" LOGIN SUPERUSER CONNECTION LIMIT 7 PASSWORD 'lead-pw'`);
    const cut = await runCli(['cutoff', 'Ops "Lead"', '--yes', '--json', '--hba-file', cl.hbaFile, '--report', report, '--dsn', cl.dsn()]);
    expect(cut.code, cut.stderr).toBe(0);
    expect(await attrs()).toEqual({ rolcanlogin: false, rolsuper: false, rolconnlimit: 0 });
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('refuses without a terminal and without --yes, changing nothing', async () => {
    const r = await runCli(['restore', 'Ops "Lead"', '--from', report, '--dsn', cl.dsn()]);
    expect(r.code).toBe(2);
    expect(await attrs()).toEqual({ rolcanlogin: false, rolsuper: false, rolconnlimit: 0 });
  });

  it('--dry-run shows the exact SQL and changes nothing', async () => {
    const hbaBefore = readFileSync(cl.hbaFile, 'utf8');
    const r = await runCli(['restore', 'Ops "Lead"', '--from', report, '--dry-run', '--json', '--dsn', cl.dsn()]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { steps: { action: string; sql: string | null; status: string }[] };
    expect(doc.steps.map((s) => s.action)).toEqual(['alter_role', 'hba_remove', 'reload']);
    expect(doc.steps[0]!.sql).toBe('ALTER ROLE "Ops ""Lead""" LOGIN CONNECTION LIMIT 7 SUPERUSER');
    expect(doc.steps.every((s) => s.status === 'planned')).toBe(true);
    expect(readFileSync(cl.hbaFile, 'utf8')).toBe(hbaBefore);
    expect(await attrs()).toEqual({ rolcanlogin: false, rolsuper: false, rolconnlimit: 0 });
  });

  it('--dry-run in text names the role as the SQL identifier, as psql would take it', async () => {
    const r = await runCli(['restore', 'Ops "Lead"', '--from', report, '--dry-run', '--dsn', cl.dsn()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain('Would restore "Ops ""Lead""" (oid');
  });

  it('--yes brings back LOGIN, the limit and SUPERUSER, removes the HBA block, and the role can log in again', async () => {
    const r = await runCli(['restore', 'Ops "Lead"', '--from', report, '--yes', '--json', '--dsn', cl.dsn()]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await attrs()).toEqual({ rolcanlogin: true, rolsuper: true, rolconnlimit: 7 });
    expect(readFileSync(cl.hbaFile, 'utf8')).not.toContain('pgrevoke cutoff BEGIN');
    const rules = await cl.sql(`SELECT line_number FROM pg_hba_file_rules WHERE auth_method = 'reject'`);
    expect(rules).toEqual([]);
    const c = await cl.connectAs('Ops "Lead"', 'lead-pw');
    expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe('Ops "Lead"');
    // a second restore has no block left to remove, and says so
    const again = await runCli(['restore', 'Ops "Lead"', '--from', report, '--yes', '--json', '--dsn', cl.dsn()]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('no pgrevoke block');
  });

  it('refuses a role that was dropped and recreated (different OID)', async () => {
    await cl.sql(`CREATE ROLE twin LOGIN`);
    const twinReport = path.join(dir, `twin-${major}.json`);
    expect((await runCli(['cutoff', 'twin', '--yes', '--report', twinReport, '--dsn', cl.dsn()])).code).toBe(0);
    await cl.sql(`DROP ROLE twin`);
    await cl.sql(`CREATE ROLE twin LOGIN`);
    const r = await runCli(['restore', 'twin', '--from', twinReport, '--yes', '--dsn', cl.dsn()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/now has OID \d+, not \d+/);
  });
});
