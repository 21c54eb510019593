// Secrets are kept out of output at their sources, never by searching the output for them: with an
// operator password of one letter, or one equal to the database name, every JSON document (stdout,
// the report file, the audit log, guard's JSON lines) still parses with its keys and values intact,
// and no connection string shown anywhere carries the password. A long random password, which
// cannot appear by coincidence, appears nowhere at all.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

type Json = Record<string, unknown>;

/** Every password component of a connection string in `text`: URI userinfo, ?password=, password=. */
function dsnPasswords(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/postgres(?:ql)?:\/\/[^:/?#@\s"]*:([^@/?#\s"]*)@/gi)) out.push(decodeURIComponent(m[1]!));
  for (const m of text.matchAll(/[?&]password=([^&#\s"]*)/gi)) out.push(decodeURIComponent(m[1]!));
  for (const m of text.matchAll(/\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|[^\s"]+)/gi)) out.push(m[1]!.replace(/^'|'$/g, ''));
  return out;
}

/** Every key and string value of a parsed JSON document. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => [k, ...strings(x)]);
  return [];
}

/** Every file under `dir` (the state directory: records, locks) with its text. */
async function filesUnder(dir: string): Promise<{ file: string; text: string }[]> {
  const out: { file: string; text: string }[] = [];
  for (const f of await fs.readdir(dir, { recursive: true })) {
    const file = path.join(dir, f);
    if ((await fs.stat(file)).isFile()) out.push({ file, text: await fs.readFile(file, 'utf8') });
  }
  return out;
}

/** Parse a document, naming the command when it does not parse (the failure today's masking causes). */
function parse(text: string, what: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (err) {
    throw new Error(`${what}: not JSON (${(err as Error).message}): ${text.slice(0, 300)}`, { cause: err });
  }
}

const PASSWORDS = [
  { label: 'one letter', user: 'op_short', password: 'a' },
  { label: 'the database name', user: 'op_dbname', password: 'postgres' },
  { label: 'a long random string', user: 'op_random', password: randomBytes(18).toString('base64url') },
];

describe.each(MAJORS)('redaction by field on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let dir = '';
  const open: pg.Client[] = [];

  beforeAll(async () => {
    cl = await startCluster(major);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-redaction-'));
    for (const p of PASSWORDS) await cl.sql(`CREATE ROLE ${p.user} SUPERUSER LOGIN PASSWORD '${p.password}'`);
  });

  afterAll(async () => {
    await Promise.all(open.map((c) => c.end().catch(() => undefined)));
    await cl?.destroyAll();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  const session = async (role: string) => {
    await cl.sql(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-${role}'`);
    const c = await cl.connectAs(role, `pw-${role}`);
    open.push(c);
    return (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
  };

  it.each(PASSWORDS.map((p, i) => [p.label, p, i] as const))(
    'password %s: cutoff, inspect, verify, kill and guard --once keep every JSON output whole and no DSN carries it',
    async (_label, { user, password }, i) => {
      const dsn = cl.url(user, password);
      const work = await fs.mkdtemp(path.join(dir, `run-${i}-`));
      const env = { PGREVOKE_STATE_DIR: path.join(work, 'state') };
      const cli = (args: string[], conninfo = dsn) => runCli([...args, '--dsn', conninfo], env, { timeoutMs: 90_000 });
      const [victim, bystander, denied] = [`victim_${i}`, `bystander_${i}`, `denied_${i}`];
      await session(victim);
      const bystanderPid = await session(bystander);
      await session(denied);
      const report = path.join(work, 'report.json');
      const audit = path.join(work, 'audit.jsonl');

      const results: [string, CliResult][] = [];
      const run = async (what: string, args: string[], code: number, conninfo = dsn) => {
        const r = await cli(args, conninfo);
        results.push([what, r]);
        expect(r.code, `${what}: ${r.stderr}`).toBe(code);
        return r;
      };

      const inspected = parse((await run('inspect', ['inspect', victim, '--json'], 0)).stdout, 'inspect');
      const cut = parse(
        (await run('cutoff', ['cutoff', victim, '--yes', '--json', '--rotate-password', '--report', report, '--audit-log', audit], 0))
          .stdout,
        'cutoff',
      );
      const verified = parse((await run('verify', ['verify', victim, '--json'], 0)).stdout, 'verify');
      const killed = parse((await run('kill', ['kill', String(bystanderPid), '--yes', '--json'], 0)).stdout, 'kill');
      const guarded = (await run('guard', ['guard', '--once', '--deny', denied, '--json'], 1)).stdout
        .trim()
        .split('\n')
        .map((l) => parse(l, 'guard'));
      // failures quote what was given: a database that does not exist, a DSN that does not parse
      await run('verify (no such database)', ['verify', victim, '--json'], 2, cl.url(user, password, 'nosuchdb'));
      const kv = `host=127.0.0.1 port=${cl.port} user=${user} password=${password} dbname=postgres nonsense=1`;
      await run('verify (bad keyword DSN)', ['verify', victim, '--json'], 2, kv);

      const fileDoc = parse(await fs.readFile(report, 'utf8'), 'the report file');
      const auditLines = (await fs.readFile(audit, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => parse(l, 'the audit log'));

      // structure intact: keys and the values that happen to contain the password's letters
      for (const doc of [inspected, cut, verified, killed, fileDoc]) expect(doc).toHaveProperty('schemaVersion');
      expect(fileDoc).toEqual(cut);
      expect(guarded.length).toBeGreaterThan(0);
      for (const line of guarded) expect(line).toHaveProperty('event');
      expect(guarded.find((l) => l.event === 'kill')).toMatchObject({ role: denied, database: 'postgres' });
      expect((killed.results as Json[])[0]).toMatchObject({ pid: bystanderPid, ok: true, user: bystander, database: 'postgres' });
      expect(auditLines.length).toBeGreaterThan(0);
      expect(verified.status).toBe('contained');

      // no connection string anywhere carries the password
      const texts = [
        ...results.flatMap(([, r]) => [r.stdout, r.stderr]),
        await fs.readFile(report, 'utf8'),
        await fs.readFile(audit, 'utf8'),
        ...[inspected, cut, verified, killed, fileDoc, ...guarded, ...auditLines].flatMap(strings),
      ];
      for (const t of texts) expect(dsnPasswords(t), t.slice(0, 300)).not.toContain(password);
      // the rotated password's verifier is only ever sent to the server
      const stateFiles = await filesUnder(env.PGREVOKE_STATE_DIR);
      expect(stateFiles.length).toBeGreaterThan(0);
      for (const t of [...texts, ...stateFiles.map((f) => f.text)]) expect(t).not.toContain('SCRAM-SHA-256$');
      // a password that cannot occur by coincidence occurs nowhere, the state directory included
      if (password.length > 16) {
        for (const t of texts) expect(t).not.toContain(password);
        for (const f of stateFiles) expect(f.text, f.file).not.toContain(password);
      }
    },
    180_000,
  );
});

describe('argv echoes', () => {
  it("commander's error for a mistyped option does not repeat the DSN's password", async () => {
    const secret = randomBytes(18).toString('base64url');
    const r = await runCli(['inspect', 'x', `--dsnn=postgresql://op:${secret}@127.0.0.1:1/postgres`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--dsnn=postgresql://op:*****@127.0.0.1:1/postgres'");
    expect(r.stderr).not.toContain(secret);
  });
});
