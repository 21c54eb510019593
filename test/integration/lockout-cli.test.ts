// `pgrevoke lockouts` and `pgrevoke unlock` as subprocesses against real servers: lockouts made by
// the engine (src/lockout/) from failures, then listed, lifted with --dry-run (nothing changes) and
// for real (the line out, the reload checked, the login back, the audit line), a role lockout's
// LOGIN given back, and a hostile state file refused.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockRules } from '../../src/lockout/hba-block.js';
import { readLockouts, storePath } from '../../src/lockout/store.js';
import type { LockoutNode } from '../../src/lockout/types.js';
import type { AuthFailure } from '../../src/serverlog/types.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { lockoutEngine, lockoutNode, loginFrom } from '../helpers/lockout.js';
import { waitFor } from '../helpers/wait.js';

const HBA =
  ['local all all trust', 'host all postgres 127.0.0.1/32 scram-sha-256', 'host all all 127.0.0.0/8 scram-sha-256'].join('\n') + '\n';

const failures = (user: string, address: string, n: number, kind: AuthFailure['kind'] = 'password'): AuthFailure[] =>
  Array.from({ length: n }, () => ({
    at: new Date().toISOString(),
    user,
    database: 'postgres',
    address,
    sqlstate: '28P01',
    kind,
    message: `password authentication failed for user "${user}"`,
    hbaLine: null,
    pid: null,
  }));

interface UnlockDoc {
  dryRun: boolean;
  lockouts: { id: string; kind: string; role: string | null; address: string | null }[];
  steps: { node: string | null; status: string; detail: string }[];
  pending: unknown[];
  exitCode: number;
}

describe.each(MAJORS)('pgrevoke lockouts and unlock on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let client: pg.Client;
  let node: LockoutNode;
  const state = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-lockout-cli-'));
  const env = { PGREVOKE_STATE_DIR: state };
  const audit = path.join(state, 'audit.jsonl');
  const cli = (args: string[]) => runCli(args, env, { timeoutMs: 60_000 });

  beforeAll(async () => {
    cl = await startCluster(major);
    await cl.writeDataFile('pg_hba.conf', HBA);
    await cl.sql('SELECT pg_reload_conf()');
    for (const r of ['alice', 'bob', 'carol']) await cl.sql(`CREATE ROLE ${r} LOGIN PASSWORD 'pw-${r}'`);
    await cl.sql('ALTER ROLE carol CONNECTION LIMIT 4');
    ({ client, node } = await lockoutNode(cl));
    const pairs = lockoutEngine([node], env, { banAddressAfter: 5 });
    await pairs.ingest([...failures('alice', '127.0.0.2', 3), ...failures('ghost', '127.0.0.4', 5, 'role_missing')]);
    await pairs.enforce();
    const roles = lockoutEngine([node], env, { by: 'role' });
    await roles.ingest(failures('carol', '127.0.0.3', 3));
    await roles.enforce();
    await waitFor(async () => (await loginFrom(cl, '127.0.0.2', 'alice', 'pw-alice')) === '28000', 10_000, 'the pair refused');
  });
  afterAll(async () => {
    await client?.end().catch(() => undefined);
    await cl?.destroyAll();
  });

  it('lockouts lists role, address, kind, count, since, until and node, as text and as JSON', async () => {
    const text = await cli(['lockouts']);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines[1]).toMatch(/role\s+│ address\s+│ kind\s+│ count │ since\s+│ until\s+│ node\s+│ status\s+│ knocks/);
    expect(text.stdout).toMatch(
      new RegExp(
        `"alice"\\s+│ 127\\.0\\.0\\.2\\s+│ address\\s+│ 3\\s+│ \\S+\\s+│ \\S+\\s+│ ${node.name.replace(/\./g, '\\.')}\\s+│ active`,
      ),
    );
    expect(text.stdout).toMatch(/\(every role\)\s+│ 127\.0\.0\.4\s+│ address_ban │ 5 /);
    expect(text.stdout).toMatch(/"carol"\s+│ \(everywhere\)\s+│ role\s+│ 3 /);
    const doc = jsonDoc<{
      lockouts: {
        role: string | null;
        address: string | null;
        kind: string;
        count: number;
        since: string;
        until: string;
        applied: string[];
        status: string;
      }[];
    }>(await cli(['lockouts', '--json']));
    expect(doc.lockouts.map((l) => [l.kind, l.role, l.address, l.count, l.applied, l.status]).sort()).toEqual(
      [
        ['address', 'alice', '127.0.0.2', 3, [node.name], 'active'],
        ['address_ban', null, '127.0.0.4', 5, [node.name], 'active'],
        ['role', 'carol', null, 3, [node.name], 'active'],
      ].sort(),
    );
  });

  it('unlock --dry-run shows the line it would remove and the reload; nothing changes', async () => {
    const before = readFileSync(cl.hbaFile, 'utf8');
    const stateBefore = readFileSync(storePath(env), 'utf8');
    const r = await cli(['unlock', 'alice', '--address', '127.0.0.2', '--dry-run', '--hba-file', cl.hbaFile, '--dsn', cl.dsn()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Would unlock 1 lockout(s):');
    expect(r.stdout).toContain(
      `PLANNED  ${node.name}: remove from ${cl.hbaFile}: host all,replication "alice" 127.0.0.2/32 reject # pgrevoke lockout `,
    );
    expect(r.stdout).toContain(`PLANNED  ${node.name}: SELECT pg_reload_conf(), then check pg_hba_file_rules`);
    expect(readFileSync(cl.hbaFile, 'utf8')).toBe(before);
    expect(readFileSync(storePath(env), 'utf8')).toBe(stateBefore);
    expect(await loginFrom(cl, '127.0.0.2', 'alice', 'pw-alice')).toBe('28000');
  });

  it('unlock ROLE --address A lifts that pair: the line out, reloaded and checked, audited; the ban stays', async () => {
    const r = await cli([
      'unlock',
      'alice',
      '--address',
      '127.0.0.2',
      '--json',
      '--hba-file',
      cl.hbaFile,
      '--audit-log',
      audit,
      '--reason',
      'user called',
      '--dsn',
      cl.dsn(),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const doc = jsonDoc<UnlockDoc>(r);
    expect(doc.dryRun).toBe(false);
    expect(doc.lockouts.map((l) => [l.role, l.address])).toEqual([['alice', '127.0.0.2']]);
    expect(doc.steps.map((s) => [s.node, s.status])).toEqual([[node.name, 'done']]);
    expect(doc.steps[0]!.detail).toMatch(/reject line removed from .*reloaded, checked in pg_hba_file_rules/);
    expect(doc.pending).toEqual([]);
    await waitFor(async () => (await loginFrom(cl, '127.0.0.2', 'alice', 'pw-alice')) === 'allow', 10_000, 'alice let in again');
    expect(blockRules(readFileSync(cl.hbaFile, 'utf8')).length).toBe(1);
    expect(await loginFrom(cl, '127.0.0.4', 'alice', 'pw-alice')).toBe('28000');
    expect((await readLockouts(env)).map((l) => l.kind).sort()).toEqual(['address_ban', 'role']);
    const lines = readFileSync(audit, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toMatchObject([
      { node: node.name, target: 'alice', action: 'hba_remove', reason: 'unlock', address: '127.0.0.2', count: 3, note: 'user called' },
    ]);
  });

  it("unlock --address A lifts the ban (the node's own hba_file found without --hba-file)", async () => {
    const r = await cli(['unlock', '--address', '127.0.0.4', '--dsn', cl.dsn()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Unlock 1 lockout\(s\):\n {2}[0-9a-f]{16} every role from 127\.0\.0\.4 \(ban\): 5 failures/);
    expect(r.stdout).toMatch(/DONE\s+\S+: reject line removed from/);
    await waitFor(
      async () => (await loginFrom(cl, '127.0.0.4', 'bob', 'pw-bob')) === 'allow',
      10_000,
      'bob let in from the banned address',
    );
    expect(readFileSync(cl.hbaFile, 'utf8')).toBe(HBA);
  });

  it('unlock ROLE gives a role lockout its LOGIN and connection limit back', async () => {
    expect(await cl.sql('SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = $1', ['carol'])).toEqual([
      { rolcanlogin: false, rolconnlimit: 0 },
    ]);
    const dry = await cli(['unlock', 'carol', '--dry-run', '--dsn', cl.dsn()]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/PLANNED\s+\S+: SET LOCAL lock_timeout = '250ms';\nALTER ROLE "carol" LOGIN CONNECTION LIMIT 4/);
    const r = await cli(['unlock', 'carol', '--json', '--dsn', cl.dsn()]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonDoc<UnlockDoc>(r).steps.map((s) => [s.status, s.detail])).toEqual([['done', 'LOGIN given back (connection limit 4)']]);
    expect(await cl.sql('SELECT rolcanlogin, rolconnlimit FROM pg_roles WHERE rolname = $1', ['carol'])).toEqual([
      { rolcanlogin: true, rolconnlimit: 4 },
    ]);
    expect(await loginFrom(cl, '127.0.0.3', 'carol', 'pw-carol')).toBe('allow');
    expect(await readLockouts(env)).toEqual([]);
    const none = await cli(['lockouts']);
    expect(none.stdout).toBe(`no lockouts in ${storePath(env)}\n`);
  });

  it('unlock of a lockout that does not exist is exit 2, nothing changed; a bad --address too', async () => {
    const r = await cli(['unlock', 'alice', '--dsn', cl.dsn()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`pgrevoke: error: no lockout of "alice" in ${storePath(env)}; nothing was changed`);
    const bad = await cli(['unlock', 'alice', '--address', '127.0.0.1/33', '--dsn', cl.dsn()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid --address: "127.0.0.1/33"');
  });

  it('a hostile lockouts.json: both commands refuse it in one line (exit 2), nothing changed', async () => {
    const planted = { schemaVersion: 1, lockouts: [{ id: 'zz', kind: 'address_ban', role: null, address: '0.0.0.0' }] };
    writeFileSync(storePath(env), JSON.stringify(planted), { mode: 0o600 });
    const before = readFileSync(cl.hbaFile, 'utf8');
    for (const args of [['lockouts'], ['unlock', '--address', '0.0.0.0', '--dsn', cl.dsn()]]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      const [first, ...rest] = r.stderr.trim().split('\n');
      expect(first).toMatch(
        /^pgrevoke: error: refusing the lockout state .*lockouts\.json: lockouts\[0\]\.id: an id is 16 hexadecimal digits; nothing was changed$/,
      );
      expect(rest.every((l) => l.startsWith('hint: '))).toBe(true);
    }
    expect(readFileSync(cl.hbaFile, 'utf8')).toBe(before);
    expect(existsSync(audit)).toBe(true);
  });
});
