// The write-ahead record of every cutoff, against real servers and a real SIGKILL: a kill at any
// point leaves a record from which `restore <role>` (no --from) brings back exactly what the role
// had; a rerun after a kill takes the before-state from the killed run's record; restore validates
// what it reads and only gives back what the cutoff took; the state directory is checked.
import { mkdtempSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ident } from '../../src/pg/quote.js';
import { jsonDoc, runCli, startCli } from '../helpers/cli.js';
import { MAJORS, parkLogin, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

interface Attrs {
  rolcanlogin: boolean;
  rolconnlimit: number;
  rolcreaterole: boolean;
  rolsuper: boolean;
}

/** Kill delays after the run's record appears: fixed, spread over snapshot, containment and settle. */
const KILL_AFTER_MS = [0, 20, 60, 150, 400];

describe.each(MAJORS)('cutoff records on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const base = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-records-'));
  const state = path.join(base, 'state');
  const env = { PGREVOKE_STATE_DIR: state };
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    runCli([...args, '--dsn', cl.dsn()], { ...env, ...extra }, { timeoutMs: 60_000 });
  const attrs = async (name: string) =>
    (await cl.sql<Attrs>('SELECT rolcanlogin, rolconnlimit, rolcreaterole, rolsuper FROM pg_roles WHERE rolname = $1', [name]))[0]!;
  const records = async () => (await fs.readdir(path.join(state, 'records')).catch(() => [])).filter((f) => f.endsWith('.jsonl'));
  const hasBlock = (name: string) => readFileSync(cl.hbaFile, 'utf8').includes(`# pgrevoke cutoff BEGIN "${name}"`);
  const ORIGINAL: Attrs = { rolcanlogin: true, rolconnlimit: 7, rolcreaterole: true, rolsuper: false };

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
  });

  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('SIGKILL at points through a cutoff: `restore <role>` without --from brings back LOGIN, limit 7 and CREATEROLE, and removes the HBA block', async () => {
    for (const [i, ms] of KILL_AFTER_MS.entries()) {
      const name = `killed_${i}`;
      await cl.sql(`CREATE ROLE ${ident(name)} LOGIN CREATEROLE CONNECTION LIMIT 7 PASSWORD 'pw'`);
      // a parked login keeps settle busy, so that later kills land inside it
      const parked = await parkLogin(cl, name, 'pw');
      const run = startCli(['cutoff', name, '--yes', '--json', '--hba-file', cl.hbaFile, '--hidden-grace', '800', '--dsn', cl.dsn()], env, {
        timeoutMs: 60_000,
      });
      await waitFor(async () => (await records()).length > i, 20_000, `the record of ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      run.signal('SIGKILL');
      await run.exited;
      void parked.client.end().catch(() => undefined);
      await cl.sql('SELECT pg_terminate_backend($1)', [parked.pid]);
      const r = await cli(['restore', name, '--yes', '--json']);
      expect(r.code, `${name} (killed after ${ms} ms): ${r.stderr}`).toBe(0);
      expect(r.stderr).toMatch(/restoring from the record of the cutoff of /);
      expect(await attrs(name), `${name} killed after ${ms} ms`).toEqual(ORIGINAL);
      expect(hasBlock(name), `${name}: HBA block`).toBe(false);
    }
  });

  it('a rerun after a kill records the before-state of the killed run, not the half-changed role', async () => {
    const name = 'rerun_me';
    await cl.sql(`CREATE ROLE ${ident(name)} LOGIN CREATEROLE CONNECTION LIMIT 7 PASSWORD 'pw'`);
    const run = startCli(['cutoff', name, '--yes', '--json', '--hba-file', cl.hbaFile, '--dsn', cl.dsn()], env, { timeoutMs: 60_000 });
    // killed once NOLOGIN has committed: the role is half-changed
    await waitFor(async () => !(await attrs(name)).rolcanlogin, 20_000, 'NOLOGIN to commit');
    run.signal('SIGKILL');
    await run.exited;
    expect(await attrs(name)).toMatchObject({ rolcanlogin: false, rolconnlimit: 0, rolcreaterole: false });
    const report = path.join(base, 'rerun.json');
    const again = await cli(['cutoff', name, '--yes', '--json', '--hba-file', cl.hbaFile, '--report', report]);
    expect(again.code, again.stderr).toBe(0);
    const d = jsonDoc(again);
    expect((d.roles as { before: unknown }[])[0]!.before).toMatchObject({ canLogin: true, connectionLimit: 7, createRole: true });
    expect((d.warnings as string[]).join('\n')).toMatch(/before-state taken from the record of the cutoff of .*cut short/);
    // restore --from the rerun's report, as the operator did: the original comes back
    const r = await cli(['restore', name, '--yes', '--from', report]);
    expect(r.code, r.stderr).toBe(0);
    expect(await attrs(name)).toEqual(ORIGINAL);
  });

  it('cutoff without --report still records it; history lists it; restore uses it once and history says so', async () => {
    const name = 'Bob';
    await cl.sql(`CREATE ROLE "Bob" LOGIN CONNECTION LIMIT 7 PASSWORD 'pw'`);
    const cut = await cli(['cutoff', name, '--yes']);
    expect(cut.code, cut.stderr).toBe(0);
    const recorded = /recorded in (\S+\.jsonl)/.exec(cut.stderr)?.[1];
    expect(recorded, cut.stderr).toBeDefined();
    expect((await fs.stat(recorded!)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.dirname(recorded!))).mode & 0o777).toBe(0o700);
    const h = await runCli(['history', name, '--json'], env);
    expect(h.code, h.stderr).toBe(0);
    const entries = jsonDoc<{ records: { roles: string[]; outcome: string; file: string; restored: unknown[] }[] }>(h).records;
    expect(entries).toEqual([expect.objectContaining({ roles: ['Bob'], outcome: 'contained', file: recorded, restored: [] })]);
    const text = await runCli(['history'], env);
    expect(text.stdout).toContain(recorded!);
    const r = await cli(['restore', name, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(recorded!);
    expect((await attrs(name)).rolcanlogin).toBe(true);
    const after = jsonDoc<{ records: { restored: { role: string }[] }[] }>(await runCli(['history', name, '--json'], env)).records;
    expect(after[0]!.restored).toEqual([expect.objectContaining({ role: 'Bob' })]);
    // used once: a second restore finds nothing left to undo
    const twice = await cli(['restore', name, '--yes']);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/no record of a cutoff of "Bob" on this cluster that a restore has not used yet/);
  });

  it('restore validates types ("superuser": "false" is refused) and never grants back what the cutoff did not strip', async () => {
    const name = 'typed';
    await cl.sql(`CREATE ROLE ${ident(name)} LOGIN PASSWORD 'pw'`);
    const report = path.join(base, 'typed.json');
    const cut = await cli(['cutoff', name, '--yes', '--report', report]);
    expect(cut.code, cut.stderr).toBe(0);
    const doc = JSON.parse(readFileSync(report, 'utf8')) as { roles: { before: Record<string, unknown> }[] };
    const stringy = path.join(base, 'typed-string.json');
    doc.roles[0]!.before.superuser = 'false';
    writeFileSync(stringy, JSON.stringify(doc));
    const bad = await cli(['restore', name, '--yes', '--from', stringy]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/roles\[0\]\.before\.superuser/);
    expect((await attrs(name)).rolcanlogin).toBe(false);
    // the report now claims the role was a superuser, and its contain step that it stripped SUPERUSER
    const claimed = path.join(base, 'typed-super.json');
    doc.roles[0]!.before.superuser = true;
    const steps = (doc as unknown as { steps: { action: string; sql: string[] }[] }).steps;
    steps.find((st) => st.action === 'contain')!.sql = [`ALTER ROLE ${ident(name)} NOLOGIN CONNECTION LIMIT 0 NOSUPERUSER NOCREATEROLE`];
    writeFileSync(claimed, JSON.stringify(doc));
    // the edited report still names its record, which did not close with it: the link is not followed, nothing changes
    const edited = await cli(['restore', name, '--yes', '--json', '--from', claimed]);
    expect(edited.code, edited.stderr).toBe(2);
    expect(edited.stderr).toMatch(/names the record .*, but that record did not close with this report/);
    expect(await attrs(name)).toMatchObject({ rolcanlogin: false, rolsuper: false });
    // the report as written names its record: restore takes the record, not the file
    const r = await cli(['restore', name, '--yes', '--json', '--from', report]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/names its record: restoring from that, not from the file/);
    expect(await attrs(name)).toMatchObject({ rolcanlogin: true, rolsuper: false });
    // without the link, the file alone is no evidence for SUPERUSER
    await cl.sql(`ALTER ROLE ${ident(name)} NOLOGIN`);
    delete (doc as { record?: unknown }).record;
    writeFileSync(claimed, JSON.stringify(doc));
    const unbacked = await cli(['restore', name, '--yes', '--json', '--from', claimed]);
    expect(unbacked.code, unbacked.stderr).toBe(0);
    expect(await attrs(name)).toMatchObject({ rolcanlogin: true, rolsuper: false });
    expect(JSON.stringify(jsonDoc(unbacked))).toContain('no record in the state directory backs this report');
  });

  it("restore --from marks the run's record: a later cutoff of a role disabled on purpose takes its before-state as it is", async () => {
    const name = 'dba_disabled';
    await cl.sql(`CREATE ROLE ${ident(name)} LOGIN CREATEROLE CONNECTION LIMIT 7 PASSWORD 'pw'`);
    const report = path.join(base, 'marked.json');
    expect((await cli(['cutoff', name, '--yes', '--report', report])).code).toBe(0);
    const back = await cli(['restore', name, '--yes', '--from', report]);
    expect(back.code, back.stderr).toBe(0);
    const h = jsonDoc<{ records: { restored: { role: string }[] }[] }>(await runCli(['history', name, '--json'], env)).records;
    expect(h.at(-1)!.restored).toEqual([expect.objectContaining({ role: name })]);
    // a DBA disables the account on purpose, then it is cut off again
    await cl.sql(`ALTER ROLE ${ident(name)} NOLOGIN NOCREATEROLE CONNECTION LIMIT 0`);
    const again = await cli(['cutoff', name, '--yes', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const d = jsonDoc(again);
    expect((d.roles as { before: unknown }[])[0]!.before).toMatchObject({ canLogin: false, createRole: false, connectionLimit: 0 });
    expect((d.warnings as string[]).join('\n')).not.toMatch(/before-state taken from the record/);
    expect((await cli(['restore', name, '--yes'])).code).toBe(0);
    expect(await attrs(name)).toMatchObject({ rolcanlogin: false, rolcreaterole: false, rolconnlimit: 0 });
  });

  it('restore without --from refuses a record of another cluster (a role of the same name elsewhere)', async () => {
    await cl.sql(`CREATE ROLE twin LOGIN PASSWORD 'pw'`);
    expect((await cli(['cutoff', 'twin', '--yes'])).code).toBe(0);
    const other = await startClusterWithHba(major);
    try {
      await other.sql(`CREATE ROLE twin NOLOGIN PASSWORD 'pw'`);
      const r = await runCli(['restore', 'twin', '--yes', '--dsn', other.dsn()], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/no record of a cutoff of "twin" on this cluster that a restore has not used yet/);
      expect((await other.sql<{ l: boolean }>(`SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = 'twin'`))[0]!.l).toBe(false);
    } finally {
      await other.destroyAll();
    }
  });

  it('a state directory another user could write is refused before any change (exit 2)', async () => {
    const name = 'unrecorded';
    await cl.sql(`CREATE ROLE ${ident(name)} LOGIN PASSWORD 'pw'`);
    const open = path.join(base, 'open-state');
    await fs.mkdir(open, { mode: 0o700 });
    await fs.chmod(open, 0o777);
    const r = await runCli(['cutoff', name, '--yes', '--dsn', cl.dsn()], { PGREVOKE_STATE_DIR: open });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/state directory .* writable by its group or by everyone/);
    expect((await attrs(name)).rolcanlogin).toBe(true);
  });
});
