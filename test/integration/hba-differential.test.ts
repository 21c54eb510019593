// pgrevoke's own differential test: what `inspect --json` says pg_hba.conf decides is what the server does.
//
// Random pg_hba.conf files from fixed seeds (test/helpers/hba-random.ts) are loaded, one after the
// other, into one real server with SSL on, log_connections on, listening on 127.0.0.1 and ::1. The
// inspected role has live sessions from 127.0.0.2, 127.0.0.3 and ::1 (a client socket bound with
// localAddress, handed to node-postgres as its stream). Every decision inspect reports is replayed
// as a real login (same database, user, transport, source address, SSL or not, physical
// replication or not) and compared: the outcome (admitted / "pg_hba.conf rejects connection" /
// "no pg_hba.conf entry") and, where the server logs it ("connection authenticated: ... (file:N)":
// password methods on 14+, every method on 18), the deciding line. Decisions inspect calls
// undecidable are counted, not replayed; decisions from addresses this host does not have (the
// generic remote ones, a sampled 10.x) cannot be replayed from loopback and are counted apart.
//
// Besides: every connection the role can make has a decision (every database it may CONNECT to,
// templates included; physical replication when it is a superuser or has REPLICATION; each of its
// sessions' addresses), and where inspect says every pg_hba.conf line rejects the role (role.can_login
// without exposure) or reports nothing that admits it, no real login of the role gets in, from any
// loopback source address, into any database, with or without SSL, replication included.
//
// `npm test`: 40 files per major (PGREVOKE_DIFF_FILES); `npm run test:matrix`: PGREVOKE_DIFF_FILES=200.
import { execFileSync } from 'node:child_process';
import { promises as fs, mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MTIME_LAG_S } from '../../src/checks/hba-reload.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS, reloadAndWait, startCluster, type TestCluster } from '../helpers/cluster.js';
import { generateHba, seedFor, WORLD, type GeneratedHba } from '../helpers/hba-random.js';

const FILES = Math.max(1, Math.min(5000, Number(process.env.PGREVOKE_DIFF_FILES ?? 40) || 40));
/** Source addresses of the role's live sessions; 127.0.0.1 is in inspect's own list. */
const SESSION_ADDRESSES = ['127.0.0.2', '127.0.0.3', '::1'];
/** Where the probes of a containment claim come from: every loopback address some generated range tells apart. */
const PROBE_ADDRESSES = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.5', '127.1.2.3', '::1'];
const UNDECIDABLE_LIMIT = 0.03;
const EXAMPLES_PER_CLASS = 3;

interface Scenario {
  transport: 'local' | 'host';
  ssl: boolean;
  gss?: boolean;
  database: string;
  address: string | null;
  addressLabel?: string | null;
  replication?: boolean;
}

interface Decision {
  scenario: Scenario;
  outcome: 'allow' | 'reject' | 'no_match' | 'undecidable';
  line: number | null;
  fileName: string | null;
  authMethod: string | null;
  reason: string | null;
}

interface Finding {
  id: string;
  severity: string;
  title: string;
  detail: string;
  exposure: boolean;
}

interface InspectJson {
  hba: { readable: boolean; decisions: Decision[]; fileErrors: unknown[]; reloadPending: boolean | null };
  findings: Finding[];
}

type ServerOutcome = 'admitted' | 'rejected' | 'no_entry';

interface Attempt {
  outcome: ServerOutcome;
  /** The deciding line, when the server logged it. */
  line: number | null;
  /** The error, or the post-HBA refusal (a role without REPLICATION asking for a walsender, ...). */
  message: string | null;
  log: string[];
}

interface Mismatch {
  cls: string;
  detail: string;
}

const isLoopback = (a: string) => a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a);
const EXPECTED: Record<Exclude<Decision['outcome'], 'undecidable'>, ServerOutcome> = {
  allow: 'admitted',
  reject: 'rejected',
  no_match: 'no_entry',
};

/** A TCP socket that node-postgres connects as usual, from a chosen loopback source address. */
class BoundSocket extends net.Socket {
  constructor(private readonly local: string) {
    super();
  }
  override connect(...args: unknown[]): this {
    if (typeof args[0] === 'number' && typeof args[1] === 'string') {
      return super.connect({ port: args[0], host: args[1], localAddress: this.local });
    }
    return super.connect(...(args as Parameters<net.Socket['connect']>));
  }
}

function scenarioKey(s: Scenario): string {
  return [s.transport, s.address ?? '-', s.ssl ? 'ssl' : 'nossl', s.replication ? 'physical-replication' : `db=${s.database}`].join(' ');
}

function describeScenario(s: Scenario): string {
  const what = s.replication ? 'physical replication' : `database "${s.database}"`;
  if (s.transport === 'local') return `local (socket), ${what}`;
  return `TCP from ${s.address}${s.addressLabel ? ` (${s.addressLabel})` : ''}, ${s.ssl ? 'SSL' : 'no SSL'}, ${what}`;
}

function numbered(g: GeneratedHba): string {
  const body = g.lines.map((l) => `  ${String(l.number).padStart(2)}: ${l.text}`).join('\n');
  const lists = Object.entries(g.files)
    .map(([name, text]) => `  @${name}: ${JSON.stringify(text)}`)
    .join('\n');
  return lists ? `${body}\n${lists}` : body;
}

describe.each(MAJORS)('pg_hba.conf differential on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  let stateDir: string;
  const held: pg.Client[] = [];

  const stats = {
    files: 0,
    decisions: 0,
    compared: 0,
    linesCompared: 0,
    undecidable: 0,
    notReplayable: 0,
    containmentClaims: 0,
    probes: 0,
    ran: false,
  };
  const outcomeMismatches: Mismatch[] = [];
  const lineMismatches: Mismatch[] = [];
  const coverageMismatches: Mismatch[] = [];
  const containmentMismatches: Mismatch[] = [];
  const undecidableReasons = new Map<string, number>();

  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-hba-diff-'));
    cl = await startCluster(major, {
      listen_addresses: `'127.0.0.1,::1'`,
      log_connections: 'on',
      log_line_prefix: `'%m [%p] '`,
      password_encryption: `'scram-sha-256'`,
    });
    // a throwaway self-signed certificate: the embedded binaries are built with OpenSSL
    const certDir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-hba-diff-cert-'));
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost'].concat([
        '-keyout',
        path.join(certDir, 'server.key'),
        '-out',
        path.join(certDir, 'server.crt'),
      ]),
      { stdio: 'ignore' },
    );
    await cl.writeDataFile('server.crt', readFileSync(path.join(certDir, 'server.crt'), 'utf8'));
    await cl.writeDataFile('server.key', readFileSync(path.join(certDir, 'server.key'), 'utf8'));
    await fs.rm(certDir, { recursive: true, force: true });
    await cl.sql(`ALTER SYSTEM SET ssl = on`);
    for (const r of WORLD.roles) {
      const attrs = [
        r.login ? `LOGIN PASSWORD '${r.password}'` : 'NOLOGIN',
        r.superuser ? 'SUPERUSER' : '',
        r.replication ? 'REPLICATION' : '',
        r.inherit === false ? 'NOINHERIT' : '',
      ];
      await cl.sql(`CREATE ROLE ${r.name} ${attrs.join(' ')}`);
    }
    for (const r of WORLD.roles) for (const g of r.groups) await cl.sql(`GRANT ${g} TO ${r.name}`);
    for (const d of WORLD.databases) await cl.sql(`CREATE DATABASE ${d}`);
    // live sessions of every inspected role from several loopback sources, under a file that admits them
    await applyHba('host all all 127.0.0.0/8 scram-sha-256\nhost all all ::1/128 scram-sha-256\n', {});
    const [ssl] = await cl.sql<{ ssl: string }>(`SELECT current_setting('ssl') AS ssl`);
    expect(ssl!.ssl).toBe('on');
    for (const role of WORLD.targets) {
      for (const address of SESSION_ADDRESSES) {
        const c = new pg.Client({ ...clientConfig(role, 'postgres', address, false, false), stream: () => new BoundSocket(address) });
        c.on('error', () => undefined);
        await c.connect();
        held.push(c);
      }
    }
  });

  afterAll(async () => {
    await Promise.all(held.map((c) => c.end().catch(() => undefined)));
    await cl?.destroyAll();
    if (stateDir) await fs.rm(stateDir, { recursive: true, force: true });
  });

  function password(role: string): string {
    return WORLD.roles.find((r) => r.name === role)!.password;
  }

  function clientConfig(role: string, database: string, address: string | null, ssl: boolean, replication: boolean): pg.ClientConfig {
    const host = address === null ? cl.socketDir : address.includes(':') ? '::1' : '127.0.0.1';
    return {
      host,
      port: cl.port,
      user: role,
      password: password(role),
      database,
      ssl: ssl ? { rejectUnauthorized: false } : false,
      connectionTimeoutMillis: 10_000,
      ...(replication ? { replication: true } : {}),
    } as pg.ClientConfig;
  }

  /** Write pg_hba.conf (the harness line first) and its @files, reload, wait until new backends have it; no error row. */
  async function applyHba(body: string, files: Record<string, string>): Promise<void> {
    for (const [name, text] of Object.entries(files)) await cl.writeDataFile(name, text);
    await cl.writeDataFile('pg_hba.conf', body.startsWith('host all postgres') ? body : `host all postgres 127.0.0.1/32 trust\n${body}`);
    // a file stamped within the mtime's uncertainty of the reload is "cannot tell" (no containment claim)
    await new Promise((r) => setTimeout(r, MTIME_LAG_S * 1000 + 20));
    await reloadAndWait(cl);
    const errors = await cl.sql<{ line_number: number; error: string }>(
      'SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL',
    );
    if (errors.length) throw new Error(`the harness wrote an invalid pg_hba.conf: ${JSON.stringify(errors)}\n${body}`);
  }

  async function logSince(offset: number): Promise<string> {
    const fh = await fs.open(cl.logFile, 'r');
    try {
      const { size } = await fh.stat();
      if (size <= offset) return '';
      const buf = Buffer.alloc(size - offset);
      await fh.read(buf, 0, buf.length, offset);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  }

  /** One real login; what the server did and, from its log, the line that decided when it says so. */
  async function attempt(role: string, s: Scenario): Promise<Attempt> {
    const start = (await fs.stat(cl.logFile)).size;
    let port: number | undefined;
    const bound = () => {
      const socket = new BoundSocket(s.address!);
      socket.once('connect', () => (port = socket.localPort));
      return socket;
    };
    const cfg = clientConfig(role, s.database, s.transport === 'local' ? null : s.address, s.ssl, Boolean(s.replication));
    const c = new pg.Client(
      s.transport === 'host'
        ? {
            ...cfg,
            stream: bound,
          }
        : cfg,
    );
    c.on('error', () => undefined);
    let outcome: ServerOutcome = 'admitted';
    let message: string | null = null;
    try {
      await c.connect();
      await c.end();
    } catch (err) {
      const e = err as { code?: string; message?: string };
      message = `${e.code ?? '?'} ${e.message ?? String(err)}`;
      if (e.code === '28000' && /^pg_hba\.conf rejects /.test(e.message ?? '')) outcome = 'rejected';
      else if (e.code === '28000' && /^no pg_hba\.conf entry /.test(e.message ?? '')) outcome = 'no_entry';
      else if (e.code === '28P01' || e.code === '42501' || e.code === '28000' || e.code === '3D000') outcome = 'admitted';
      else throw new Error(`login of ${role} (${describeScenario(s)}) failed for a reason outside pg_hba.conf: ${message}`, { cause: err });
    }
    // this backend's lines: the one whose "connection received" names our source port (or the socket)
    const received = s.transport === 'local' ? 'connection received: host=[local]' : `connection received: host=${s.address} port=${port}`;
    let mine: string[] = [];
    for (let i = 0; i < 100 && mine.length === 0; i++) {
      const text = await logSince(start);
      const pid = text
        .split('\n')
        .find((l) => l.includes(received))
        ?.match(/\[(\d+)\]/)?.[1];
      if (pid) mine = text.split('\n').filter((l) => l.includes(`[${pid}]`));
      else await new Promise((r) => setTimeout(r, 10));
    }
    if (mine.length === 0) throw new Error(`no log line for the login of ${role} (${describeScenario(s)}) in ${cl.logFile}`);
    const hbaLine =
      mine.map((l) => l.match(/connection authenticated: .*\((.+):(\d+)\)\s*$/)).find((m) => m)?.[2] ??
      mine.map((l) => l.match(/Connection matched (?:file ".*" line |pg_hba\.conf line )(\d+)/)).find((m) => m)?.[1];
    return { outcome, line: hbaLine === undefined ? null : Number(hbaLine), message, log: mine };
  }

  /** What in the lines involved a client-side evaluator can get wrong: the mismatch class. */
  function tags(g: GeneratedHba, ...lineNumbers: (number | null | undefined)[]): string {
    const lines = lineNumbers.filter((n): n is number => n !== null && n !== undefined).map((n) => g.lines[n - 1]);
    // a quoted token read from an @file is the same mistake as one written on the line
    const notable = (f: string) => /quoted/.test(f);
    const found = lines.flatMap((l) => (l ? l.features.filter(notable).map((f) => f.replace(/^@file: /, '')) : []));
    if (lines.length && found.length) return [...new Set(found)].sort().join(', ');
    if (lines.length) return 'no quoted token on the lines involved';
    const inFile = g.lines.flatMap((l) => l.features.filter((f) => /quoted/.test(f)).map((f) => f.replace(/^@file: /, '')));
    return inFile.length
      ? `line unknown; the file has ${[...new Set(inFile)].sort().join(', ')}`
      : 'line unknown; no quoted token in the file';
  }

  function header(g: GeneratedHba, index: number): string {
    return `PostgreSQL ${major}, file #${index} (seed 0x${g.seed.toString(16)}), role ${g.role}:\n${numbered(g)}`;
  }

  function serverSays(a: Attempt): string {
    return `server: ${a.outcome}${a.line !== null ? ` by line ${a.line}` : ''}${a.message ? ` (${a.message})` : ''}\n    log: ${a.log.join('\n         ')}`;
  }

  async function inspect(role: string): Promise<InspectJson> {
    const r = await runCli(['inspect', role, '--json', '--dsn', cl.dsn()], { PGREVOKE_STATE_DIR: stateDir }, { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`inspect ${role} exited ${r.code}: ${r.stderr}`);
    return jsonDoc<InspectJson>(r);
  }

  /** Every connection the role could attempt from here: databases it may CONNECT to (templates too) and physical replication. */
  async function targetsOf(role: string): Promise<{ databases: string[]; streams: boolean }> {
    const dbs = await cl.sql<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datallowconn AND has_database_privilege($1, oid, 'CONNECT') ORDER BY datname`,
      [role],
    );
    const [r] = await cl.sql<{ streams: boolean }>(`SELECT rolsuper OR rolreplication AS streams FROM pg_roles WHERE rolname = $1`, [role]);
    return { databases: dbs.map((d) => d.datname), streams: r!.streams };
  }

  it(
    `replays every decision of inspect --json as a real login, ${FILES} random files`,
    async () => {
      const started = Date.now();
      for (let index = 0; index < FILES; index++) {
        const g = generateHba(seedFor(index));
        await applyHba(g.text, g.files);
        const report = await inspect(g.role);
        stats.files++;
        const head = header(g, index);
        expect(report.hba.readable, head).toBe(true);
        const decisions = report.hba.decisions;
        const tried = new Map<string, Attempt>();
        const run = async (s: Scenario) => {
          const key = scenarioKey(s);
          let a = tried.get(key);
          if (!a) {
            a = await attempt(g.role, s);
            tried.set(key, a);
          }
          return a;
        };

        for (const d of decisions) {
          stats.decisions++;
          const s = d.scenario;
          const what = `  decision: ${describeScenario(s)} -> ${d.outcome}${d.line !== null ? ` by line ${d.line}` : ''}${d.reason ? ` (${d.reason})` : ''}`;
          if (d.outcome === 'undecidable') {
            stats.undecidable++;
            const reason = (d.reason ?? 'no reason').replace(/line \d+/g, 'line N').replace(/"[^"]*"/g, '"…"');
            undecidableReasons.set(reason, (undecidableReasons.get(reason) ?? 0) + 1);
            continue;
          }
          if ((s.transport === 'host' && (s.address === null || !isLoopback(s.address))) || s.gss) {
            stats.notReplayable++;
            continue;
          }
          const a = await run(s);
          stats.compared++;
          const want = EXPECTED[d.outcome];
          if (a.outcome !== want) {
            const pgrevokeLine = d.outcome === 'no_match' ? null : d.line;
            outcomeMismatches.push({
              cls: `pgrevoke ${d.outcome}, server ${a.outcome}${s.replication ? ' (physical replication)' : ''} [${tags(g, pgrevokeLine, a.line)}]`,
              detail: `${head}\n${what}\n  ${serverSays(a)}`,
            });
            continue;
          }
          if (d.outcome === 'allow' && a.line !== null) {
            stats.linesCompared++;
            if (a.line !== d.line) {
              lineMismatches.push({
                cls: `allow by another line than the server's [${tags(g, d.line, a.line)}]`,
                detail: `${head}\n${what}\n  ${serverSays(a)}`,
              });
            }
          }
        }

        // coverage: every database it may CONNECT to, physical replication when it may stream, each session's address
        const { databases, streams } = await targetsOf(g.role);
        const has = (pred: (s: Scenario) => boolean) => decisions.some((d) => pred(d.scenario));
        for (const db of databases) {
          if (!has((s) => !s.replication && s.database === db)) {
            coverageMismatches.push({
              cls: `no decision for ${db.startsWith('template') ? 'a template database' : 'a database'} the role may CONNECT to`,
              detail: `${head}\n  no decision for database "${db}"`,
            });
          }
        }
        if (streams && !has((s) => Boolean(s.replication))) {
          const [r] = await cl.sql<{ rolsuper: boolean; rolreplication: boolean }>(
            'SELECT rolsuper, rolreplication FROM pg_roles WHERE rolname = $1',
            [g.role],
          );
          coverageMismatches.push({
            cls: `no physical-replication decision for a ${r!.rolreplication ? 'REPLICATION role' : 'superuser without REPLICATION'}`,
            detail: `${head}\n  no decision with replication: true`,
          });
        }
        for (const address of SESSION_ADDRESSES) {
          if (!has((s) => s.transport === 'host' && s.address === address)) {
            coverageMismatches.push({ cls: 'no decision for a live session address', detail: `${head}\n  no decision from ${address}` });
          }
        }

        // containment: inspect says nothing admits the role -> no real login may get in, anywhere
        const canLogin = report.findings.find((f) => f.id === 'role.can_login');
        const claimsRejected = canLogin !== undefined && !canLogin.exposure;
        const admitsSomething =
          decisions.some((d) => d.outcome === 'allow' || d.outcome === 'undecidable') ||
          report.findings.some((f) => f.id === 'hba.not_rejected');
        if (claimsRejected || !admitsSomething) {
          if (claimsRejected) stats.containmentClaims++;
          const claim = claimsRejected
            ? `role.can_login says: ${canLogin.title}: ${canLogin.detail}`
            : 'no decision admits the role and there is no hba.not_rejected finding';
          const probes: Scenario[] = [];
          for (const database of databases) {
            probes.push({ transport: 'local', ssl: false, database, address: null });
            for (const address of PROBE_ADDRESSES)
              for (const ssl of [false, true]) probes.push({ transport: 'host', ssl, database, address });
          }
          if (streams) {
            probes.push({ transport: 'local', ssl: false, database: 'replication', address: null, replication: true });
            for (const address of PROBE_ADDRESSES)
              for (const ssl of [false, true]) probes.push({ transport: 'host', ssl, database: 'replication', address, replication: true });
          }
          for (const p of probes) {
            stats.probes++;
            const a = await run(p);
            if (a.outcome !== 'admitted') continue;
            const covered = decisions.find((d) => scenarioKey(d.scenario) === scenarioKey(p));
            containmentMismatches.push({
              // the lines that let it in: the deciding one and every line before it that pgrevoke may have misread
              cls: `${claimsRejected ? 'claims "every line rejects it"' : 'reports nothing that admits it'}, server admits [${tags(g, covered?.line, ...(a.line === null ? [] : g.lines.slice(1, a.line).map((l) => l.number)))}]${
                covered ? '' : ' (no decision for this connection)'
              }`,
              detail: `${head}\n  ${claim}\n  login: ${describeScenario(p)}${covered ? ` (decision: ${covered.outcome})` : ''}\n  ${serverSays(a)}`,
            });
          }
        }
      }
      stats.ran = true;
      const total = stats.compared + stats.undecidable;
      console.log(
        `pg_hba.conf differential, PostgreSQL ${major}: ${stats.files} files, ${stats.decisions} decisions; ` +
          `${stats.compared} connections compared (${stats.linesCompared} with the deciding line from the server log), ` +
          `${stats.undecidable} undecidable (${((100 * stats.undecidable) / Math.max(1, total)).toFixed(2)} %), ` +
          `${stats.notReplayable} not replayable from loopback; ${stats.containmentClaims} containment claims, ${stats.probes} probe logins; ` +
          `${outcomeMismatches.length} outcome, ${lineMismatches.length} line, ${coverageMismatches.length} coverage and ` +
          `${containmentMismatches.length} containment mismatches; ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      if (undecidableReasons.size) console.log(`undecidable reasons: ${JSON.stringify([...undecidableReasons])}`);
    },
    30_000 + FILES * 15_000,
  );

  /** One report per class: count, then the first examples in full. */
  function report(kind: string, list: Mismatch[]): string {
    if (!stats.ran) return `${kind}: the replay did not finish (see the test above)`;
    const byClass = new Map<string, Mismatch[]>();
    for (const m of list) byClass.set(m.cls, [...(byClass.get(m.cls) ?? []), m]);
    const out = [...byClass].sort((a, b) => b[1].length - a[1].length);
    const text = out
      .map(
        ([cls, ms]) =>
          `${ms.length} x ${cls}\n${ms
            .slice(0, EXAMPLES_PER_CLASS)
            .map((m) => m.detail)
            .join('\n  --\n')}`,
      )
      .join('\n\n');
    if (list.length)
      console.log(`\n=== PostgreSQL ${major}: ${kind} mismatches by class ===\n${out.map(([c, ms]) => `${ms.length} x ${c}`).join('\n')}`);
    return text;
  }

  it('the outcome of every replayed decision is what the server did', () => {
    expect(report('outcome', outcomeMismatches)).toBe('');
  });

  it('the deciding line of every admitted replay is the one the server logged', () => {
    expect(report('line', lineMismatches)).toBe('');
  });

  it('every connection the role can make has a decision (templates, replication for superusers, session addresses)', () => {
    expect(report('coverage', coverageMismatches)).toBe('');
  });

  it('where inspect says every line rejects the role (or nothing admits it), no real login of the role gets in', () => {
    expect(report('containment', containmentMismatches)).toBe('');
  });

  it(`fewer than ${UNDECIDABLE_LIMIT * 100} % of the decisions are undecidable`, () => {
    expect(stats.ran).toBe(true);
    expect(stats.compared).toBeGreaterThan(FILES * 5);
    expect(stats.undecidable / Math.max(1, stats.compared + stats.undecidable)).toBeLessThan(UNDECIDABLE_LIMIT);
  });
});
