// A prepared transaction's locks on every major, and what a non-superuser operator cannot finish:
// inspect, cutoff's check_locks and the plan must all see the transaction and say it stays.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonDoc, runCli, runOnTerminal } from '../helpers/cli.js';
import { MAJORS, startClusterWithHba, type TestCluster } from '../helpers/cluster.js';

interface Json {
  [k: string]: unknown;
}
type Step = { action: string; status: string; detail: string | null; executed: string[]; sql: string[] };
const step = (d: Json, action: string) => (d.steps as Step[]).find((s) => s.action === action)!;

describe.each(MAJORS)('prepared transactions and a non-superuser operator on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const oncall = () => cl.url('oncall', 'oncall-pw');

  /** `role` prepares a transaction holding a row of accounts and an EXCLUSIVE lock on a table of its own, loot_<role>. */
  const prepare = async (role: string, gid: string, id: number) => {
    await cl.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
    // 16+: a CREATEROLE operator may alter only roles it holds ADMIN OPTION on; no SET, so it cannot become the owner
    if (major >= 16) await cl.sql(`GRANT ${role} TO oncall WITH ADMIN TRUE, INHERIT FALSE, SET FALSE`);
    await cl.sql(`CREATE TABLE loot_${role} (v text); GRANT ALL ON loot_${role} TO ${role}`);
    const c = await cl.connectAs(role, 'pw');
    await c.query('BEGIN');
    await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [id]);
    await c.query(`LOCK TABLE loot_${role} IN EXCLUSIVE MODE`);
    await c.query(`PREPARE TRANSACTION '${gid}'`);
    await c.end();
  };
  const preparedLocks = async (gid: string) =>
    (
      await cl.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_locks x ON x.virtualtransaction = l.virtualtransaction
         JOIN pg_prepared_xacts p ON x.locktype = 'transactionid' AND x.transactionid = p.transaction
         WHERE l.pid IS NULL AND x.pid IS NULL AND p.gid = $1`,
        [gid],
      )
    )[0]!.n;

  beforeAll(async () => {
    cl = await startClusterWithHba(major);
    await cl.sql('CREATE TABLE accounts (id int PRIMARY KEY, balance int)');
    await cl.sql('INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g');
    await cl.sql('GRANT ALL ON accounts TO PUBLIC');
    await cl.sql(`CREATE ROLE oncall LOGIN PASSWORD 'oncall-pw' CREATEROLE IN ROLE pg_signal_backend`);
  });

  afterAll(async () => {
    for (const { gid } of await cl.sql<{ gid: string }>('SELECT gid FROM pg_prepared_xacts')) await cl.sql(`ROLLBACK PREPARED '${gid}'`);
    await cl?.destroyAll();
  });

  it("inspect as a non-superuser lists the prepared transaction's row and table locks and says it cannot finish it", async () => {
    await prepare('px_inspect', 'pi-1', 1);
    const r = await runCli(['inspect', 'px_inspect', '--json', '--dsn', oncall()]);
    const d = jsonDoc<Json>(r);
    const mine = (d.locks as Json[]).filter((l) => l.preparedGid === 'pi-1');
    expect(mine.map((l) => [l.locktype, l.mode, l.relation])).toEqual(
      expect.arrayContaining([
        ['relation', 'RowExclusiveLock', 'public.accounts'],
        ['relation', 'ExclusiveLock', 'public.loot_px_inspect'],
        ['transactionid', 'ExclusiveLock', null],
      ]),
    );
    expect(mine).toHaveLength(await preparedLocks('pi-1'));
    expect(d.preparedTransactions).toEqual([
      expect.objectContaining({
        gid: 'pi-1',
        database: 'postgres',
        holds: expect.arrayContaining(['ExclusiveLock on public.loot_px_inspect']),
      }),
    ]);
    const f = (d.findings as Json[]).find((x) => x.id === 'operator.cannot_finish_prepared');
    expect(f).toMatchObject({ severity: 'high', exposure: false });
    expect(f!.detail).toContain(`'pi-1' in "postgres"`);
    expect(f!.detail).toContain('ExclusiveLock on public.loot_px_inspect');
    expect(f!.detail).toContain('only a superuser or the role that prepared it');
    expect(f!.remediation).toContain(`in "postgres": ROLLBACK PREPARED 'pi-1'`);
    // a superuser gets no such finding
    const su = jsonDoc<Json>(await runCli(['inspect', 'px_inspect', '--json', '--dsn', cl.dsn()]));
    expect((su.findings as Json[]).map((x) => x.id)).not.toContain('operator.cannot_finish_prepared');
    expect((su.locks as Json[]).filter((l) => l.preparedGid === 'pi-1')).toHaveLength(mine.length);
  });

  it("cutoff as a non-superuser: the rollback is not attempted, check_locks lists the transaction's locks as remaining, exposure names it", async () => {
    await prepare('px_cut', 'pc-1', 2);
    const locks = await preparedLocks('pc-1');
    expect(locks).toBeGreaterThanOrEqual(3);

    // dry run and the confirmation on a terminal say it cannot be done, never "would roll back"
    const dry = await runCli(['cutoff', 'px_cut', '--dry-run', '--dsn', oncall()]);
    expect(dry.stdout).not.toMatch(/would roll back/);
    expect(dry.stdout).toMatch(/SKIPPED rollback_prepared .*\n +not possible: oncall is not a superuser/);
    expect(dry.stdout).toMatch(/PLANNED check_locks .*\n +would list the locks that remain \(those of prepared 'pc-1' will/);
    expect(dry.stdout).toContain(`  - prepared transaction of "px_cut" 'pc-1' in "postgres", holding ${locks} lock(s)`);
    const tty = await runOnTerminal(['cutoff', 'px_cut', '--show-sql', '--dsn', oncall()], 'n\r');
    expect(tty.screen).toMatch(/rollback_prepared \(role "px_cut", db "postgres"\) skipped: not possible: oncall is not a superuser/);
    expect(tty.screen).toContain(`left open: prepared transaction of "px_cut" 'pc-1' in "postgres", holding ${locks} lock(s)`);
    expect(tty.screen).not.toMatch(/would roll back/);

    const r = await runCli(['cutoff', 'px_cut', '--yes', '--json', '--dsn', oncall()], {}, { timeoutMs: 90_000 });
    const d = jsonDoc<Json>(r);
    expect(r.code, r.stderr).toBe(1);
    expect(step(d, 'rollback_prepared')).toMatchObject({
      status: 'skipped',
      executed: [],
      detail: expect.stringContaining(
        'only a superuser or the role that prepared it may COMMIT or ROLLBACK PREPARED; it keeps its locks until a superuser runs in "postgres": ROLLBACK PREPARED \'pc-1\'',
      ),
    });
    const cl_ = step(d, 'check_locks');
    expect(cl_.status).toBe('done');
    expect(cl_.detail).not.toContain('no lock of the role remains');
    expect(cl_.detail).toContain(`${locks} lock(s) remain`);
    const remaining = (d.locks as Json).remaining as Json[];
    expect(remaining.filter((x) => x.prepared_gid === 'pc-1')).toHaveLength(locks);
    expect(remaining.map((x) => x.relation)).toEqual(expect.arrayContaining(['public.accounts', 'public.loot_px_cut']));
    const exposure = d.exposure as string[];
    expect(exposure).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^prepared transaction of "px_cut" 'pc-1' in "postgres", holding \d+ lock\(s\): .*ExclusiveLock on public\.loot_px_cut.*: not possible/,
        ),
        expect.stringMatching(
          /lock\(s\) of the role's former backends or prepared transactions remain; prepared 'pc-1' in "postgres" holds .*ExclusiveLock on public\.loot_px_cut/,
        ),
      ]),
    );
    // it is still there, with its locks: what the report says is what the server has
    expect(await preparedLocks('pc-1')).toBe(locks);
  });

  it('HBA as a non-superuser with --hba-file writable here: the reason is the missing privilege, with the GRANTs that make it work', async () => {
    await cl.sql(`CREATE ROLE hba_np LOGIN PASSWORD 'pw'`);
    if (major >= 16) await cl.sql(`GRANT hba_np TO oncall WITH ADMIN TRUE, INHERIT FALSE, SET FALSE`);
    const r = await runCli(['cutoff', 'hba_np', '--yes', '--json', '--hba-file', cl.hbaFile, '--dsn', oncall()], {}, { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    const hba = step(jsonDoc<Json>(r), 'hba_reject');
    expect(hba.status).toBe('skipped');
    expect(hba.detail).not.toContain('managed service');
    expect(hba.detail).toContain('oncall may not reload the configuration (pg_reload_conf) nor read pg_hba_file_rules');
    for (const g of [
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO "oncall"',
      'GRANT SELECT ON pg_catalog.pg_hba_file_rules TO "oncall"',
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO "oncall"',
    ])
      expect(hba.detail).toContain(g);
    expect(hba.detail).toContain(`pg_ctlcluster ${major} <cluster> reload`);

    // the GRANTs named are what it takes: with them the same operator writes, reloads and checks the block
    await cl.sql(`CREATE ROLE hba_np2 LOGIN PASSWORD 'pw2'`);
    if (major >= 16) await cl.sql(`GRANT hba_np2 TO oncall WITH ADMIN TRUE, INHERIT FALSE, SET FALSE`);
    await cl.sql('GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO oncall');
    await cl.sql('GRANT SELECT ON pg_catalog.pg_hba_file_rules TO oncall');
    await cl.sql('GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO oncall');
    try {
      const ok = await runCli(
        ['cutoff', 'hba_np2', '--yes', '--json', '--hba-file', cl.hbaFile, '--dsn', oncall()],
        {},
        { timeoutMs: 90_000 },
      );
      expect(ok.code, ok.stderr).toBe(0);
      expect(step(jsonDoc<Json>(ok), 'hba_reject')).toMatchObject({ status: 'done' });
      await cl.sql(`ALTER ROLE hba_np2 LOGIN`);
      const c = new pg.Client({ host: '127.0.0.1', port: cl.port, user: 'hba_np2', password: 'pw2', database: 'postgres' });
      await expect(c.connect()).rejects.toThrow(/pg_hba\.conf rejects connection/);
    } finally {
      await cl.sql('REVOKE EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() FROM oncall');
      await cl.sql('REVOKE SELECT ON pg_catalog.pg_hba_file_rules FROM oncall');
      await cl.sql('REVOKE EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() FROM oncall');
    }
  });
});
