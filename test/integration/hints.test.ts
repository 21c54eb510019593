// Hints that know the situation, on a real server through the CLI: root with no role "root", a
// role name in SQL quotes, several roles in one comma-separated argument; and -y for --yes.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootHint } from '../../src/pg/connect.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { canQuery, MAJORS, PASSWORD_HBA, reloadAndWait, startCluster, type TestCluster } from '../helpers/cluster.js';

describe.each(MAJORS)('hints on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const canLogin = async (name: string) =>
    (await cl.sql<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [name]))[0]?.l;

  beforeAll(async () => {
    cl = await startCluster(major);
    for (const r of ['Bob', 'mallory', 'alice', 'eve', 'trent']) await cl.sql(`CREATE ROLE "${r}" LOGIN PASSWORD 'pw-${r}'`);
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('connecting as the OS user: as root (no role "root") the hint is sudo -u postgres or -U', async () => {
    // over the socket, which trusts local logins, without -U or PGUSER: the login role is the OS user's name
    const r = await runCli(['inspect', 'Bob', '-h', cl.socketDir, '-p', String(cl.port), '-d', 'postgres']);
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    if (process.getuid?.() === 0) {
      expect(lines[0]).toBe(
        'pgrevoke: error: role "root" does not exist (root@socket ' + `${cl.socketDir}:${cl.port}/postgres) [SQLSTATE 28000]`,
      );
      expect(lines[1]).toMatch(/^hint: pgrevoke runs as root, .*sudo -u postgres pgrevoke \.\.\..*-U postgres/);
    } else {
      expect(lines[1]).not.toContain('sudo -u postgres');
    }
    // named with -U, root gets in
    const ok = await runCli(['inspect', 'Bob', '--json', '-h', cl.socketDir, '-p', String(cl.port), '-U', 'postgres', '-d', 'postgres']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("peer authentication (Debian's socket default) refusing -U postgres from another OS user: run as that user", async () => {
    await cl.writeDataFile('pg_hba.conf', 'local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n');
    await reloadAndWait(cl);
    try {
      const r = await runCli(['inspect', 'Bob', '-h', cl.socketDir, '-p', String(cl.port), '-U', 'postgres', '-d', 'postgres']);
      expect(r.code, r.stderr).toBe(2);
      const [error, hint, ...rest] = r.stderr.trimEnd().split('\n');
      expect(rest).toEqual([]);
      expect(error).toMatch(/^pgrevoke: error: Peer authentication failed for user "postgres" .*\[SQLSTATE 28000\]$/);
      if (process.getuid?.() === 0) expect(hint).toBe(`hint: ${rootHint({ user: 'postgres' }, 'Peer authentication failed', 0)}`);
      else expect(hint).not.toContain('sudo -u');
    } finally {
      await cl.writeDataFile('pg_hba.conf', PASSWORD_HBA);
      await reloadAndWait(cl);
    }
  });

  it('inspect \'"Bob"\': names are exact, no SQL quoting; suggests Bob', async () => {
    const r = await runCli(['inspect', '"Bob"', '--dsn', cl.dsn()]);
    expect(r.code).toBe(2);
    const [error, hint, ...rest] = r.stderr.trimEnd().split('\n');
    expect(rest).toEqual([]);
    expect(error).toMatch(/^pgrevoke: error: role .*Bob.* does not exist \[SQLSTATE 42704\]$/);
    expect(hint).toBe('hint: role names are exact, with no SQL quoting (the quotes were taken as part of the name): did you mean Bob?');
    const ok = await runCli(['inspect', 'Bob', '--json', '--dsn', cl.dsn()]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(jsonDoc<{ role: { name: string } }>(ok).role.name).toBe('Bob');
  });

  it("cutoff 'mallory,alice': two arguments are suggested, and nothing changes", async () => {
    const r = await runCli(['cutoff', 'mallory,alice', '--yes', '--dsn', cl.dsn()], {}, { timeoutMs: 90_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pgrevoke: error: role .*mallory,alice.* does not exist \[SQLSTATE 42704\]$/m);
    expect(r.stderr).toContain(
      'hint: a comma is part of a role name, not a list: give each role as an argument of its own (mallory alice)\n',
    );
    expect(await canLogin('mallory')).toBe(true);
    expect(await canLogin('alice')).toBe(true);
  });

  it('-y is --yes: cutoff, kill and restore act without a terminal', async () => {
    const eve: pg.Client = await cl.connectAs('eve', 'pw-eve');
    const trent: pg.Client = await cl.connectAs('trent', 'pw-trent');
    const pid = (await trent.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;

    const cut = await runCli(['cutoff', 'eve', '-y', '--json', '--dsn', cl.dsn()], {}, { timeoutMs: 90_000 });
    expect(cut.code, cut.stderr).toBe(0);
    expect(await canLogin('eve')).toBe(false);
    expect(await canQuery(eve)).toBe(false);

    const back = await runCli(['restore', 'eve', '-y', '--dsn', cl.dsn()], {}, { timeoutMs: 90_000 });
    expect(back.code, back.stderr).toBe(0);
    expect(await canLogin('eve')).toBe(true);

    const k = await runCli(['kill', String(pid), '-y', '--dsn', cl.dsn()]);
    expect(k.code, k.stderr).toBe(0);
    expect(await canQuery(trent)).toBe(false);
  });
});
