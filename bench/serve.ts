// pgrevoke serve's speed (issue 17): from the identity provider's request to the mapped role's last
// session ended. `pgrevoke serve --config` runs as a subprocess (plain HTTP on 127.0.0.1, the SCIM
// token and GitHub secret in its environment) over 1 node or 8 embedded clusters; on every node of
// the placement SESSIONS sessions of the role query and reconnect as fast as they can. Each trial:
// a fresh SCIM user (POST /Users, touches no database), then Okta's deactivation PATCH; once per
// placement a signed GitHub member_removed instead. Containment = the last successful attacker
// query by the server's clock_timestamp() (as bench/cutoff.ts), minus the client's send time and
// minus the moment the 2xx went out. The service is loaded with a small probe (node --import) that
// stamps each stderr line, each request's arrival and each response's end with the epoch clock, so
// that where the time goes is read on the server's side, not from this busy process.
import { createHmac, randomUUID } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Attacker } from '../src/demo/attacker.js';
import { EmbeddedCluster } from '../src/embedded/cluster.js';
import { BIN, machine, median, ROOT, waitUntil } from './lib.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 7);
const CLUSTERS = 8;
const SESSIONS = Number(process.env.BENCH_SERVE_SESSIONS ?? 50);
const INTERVAL_MS = 20;
const TOKEN = 'bench-scim-token-0123456789abcdef';
const SECRET = 'bench-github-secret';
const ATTACK_QUERY = `SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS at`;
const OKTA_DEACTIVATE = {
  schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
  Operations: [{ op: 'replace', value: { active: false } }],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// In the service: every stderr line prefixed `@<epoch ms> `; each request's arrival (headers parsed),
// its response's end and each fsync (FileHandle.sync: its duration and file) as lines of their own.
// Nothing else of the service is touched.
const PROBE = `
import fs from 'node:fs';
import http from 'node:http';
const now = () => (performance.timeOrigin + performance.now()).toFixed(1);
const write = process.stderr.write.bind(process.stderr);
let atStart = true;
process.stderr.write = (chunk, ...rest) => {
  const s = String(chunk);
  const out = s.replace(/[^\\n]*\\n|[^\\n]+$/g, (l) => { const p = atStart ? '@' + now() + ' ' : ''; atStart = l.endsWith('\\n'); return p + l; });
  return write(out, ...rest);
};
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (ev, req, res) {
  if (ev === 'request') {
    process.stderr.write('probe request ' + req.method + ' ' + req.url + '\\n');
    const end = res.end;
    res.end = function (...a) { process.stderr.write('probe response ' + res.statusCode + ' ' + req.method + ' ' + req.url + '\\n'); return end.apply(this, a); };
  }
  return emit.apply(this, arguments);
};
const paths = new WeakMap();
const open = fs.promises.open;
fs.promises.open = async function (p, ...a) { const h = await open.call(this, p, ...a); paths.set(h, String(p)); return h; };
const h = await open('/dev/null');
const proto = Object.getPrototypeOf(h);
await h.close();
for (const name of ['sync', 'datasync']) {
  const orig = proto[name];
  proto[name] = async function () {
    const t = performance.now();
    try { return await orig.call(this); }
    finally { process.stderr.write('probe fsync ' + (performance.now() - t).toFixed(1) + ' ms ' + (paths.get(this) ?? '?') + '\\n'); }
  };
}`;

// The identity provider: a process of its own, so that its send and receive times are not held up
// by this process's event loop (the attackers' sessions). One JSON request per stdin line, one
// JSON answer per stdout line; the response time is when the status line and headers arrived.
const CLIENT = `
import readline from 'node:readline';
const now = () => performance.timeOrigin + performance.now();
for await (const line of readline.createInterface({ input: process.stdin })) {
  const q = JSON.parse(line);
  const sendAt = now();
  try {
    const r = await fetch(q.url, { method: q.method, headers: q.headers, body: q.body });
    const respAt = now();
    process.stdout.write(JSON.stringify({ sendAt, respAt, status: r.status, body: await r.text() }) + '\\n');
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: String(err) }) + '\\n');
  }
}`;

interface Answer {
  sendAt: number;
  respAt: number;
  status: number;
  body: string;
}

class Client {
  private readonly child: ChildProcess;
  private readonly waiting: ((a: Answer | { error: string }) => void)[] = [];

  constructor() {
    this.child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    let rest = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      const parts = (rest + d.toString()).split('\n');
      rest = parts.pop()!;
      for (const l of parts) this.waiting.shift()?.(JSON.parse(l) as Answer | { error: string });
    });
  }

  async request(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
    const a = await new Promise<Answer | { error: string }>((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin!.write(`${JSON.stringify({ url, method, headers, body })}\n`);
    });
    if ('error' in a) throw new Error(`bench serve client: ${method} ${url}: ${a.error}`);
    return a;
  }

  stop(): void {
    this.child.stdin!.end();
  }
}

const client = () => (theClient ??= new Client());
let theClient: Client | null = null;

interface Node {
  cl: EmbeddedCluster;
  admin: pg.Client;
  hba: string;
  dsn: string;
}

interface Service {
  child: ChildProcess;
  url: string;
  dir: string;
  state: string;
  /** Every stderr line of the service with the probe's stamp. */
  lines: { at: number; text: string }[];
}

type Provider = 'scim' | 'github';
type PlacementName = '1 node' | `${number} nodes`;

interface Trial {
  provider: Provider;
  status: string;
  httpStatus: number;
  /** Milestones, epoch ms (NaN when not seen). */
  t: Record<Milestone, number>;
  escapes: number;
  lastAfterReport: boolean;
  liveAfter: number;
  load: number;
  /** The service's fsyncs from the request's arrival (the POST /Users before it left out) to the outcome journaled: when each ended, how long, which file. */
  fsyncs: { at: number; ms: number; file: string }[];
}

const MILESTONES = [
  'client send',
  'request arrived',
  'journal: event created',
  'journal fsync\u2019d (serve_received)',
  '2xx out',
  '2xx at client',
  'worker: cutoff started',
  'sessions open',
  'plan built',
  'record written',
  'contain start (last node)',
  'contain\u2019s next step started (last node)',
  'last attacker success',
  'outcome journaled',
] as const;
type Milestone = (typeof MILESTONES)[number];

// ---- the service ----

function configText(nodes: Node[]): string {
  return [
    'listen: 127.0.0.1:0',
    'scim: { token_env: PGREVOKE_SCIM_TOKEN }',
    'github: { secret_env: PGREVOKE_GITHUB_SECRET, org: acme }',
    'audit_log: audit.jsonl',
    `targets: [ ${nodes.map((n) => JSON.stringify(n.dsn)).join(', ')} ]`,
    'identities:',
    '  - { github: mallory-gh, roles: [mallory] }',
    '  - { github: nobody-gh, roles: [nobody] }',
    `  - { user_pattern: 'mallory\\+[a-z0-9-]+@example\\.com', roles: [mallory] }`,
    '',
  ].join('\n');
}

async function startService(nodes: Node[]): Promise<Service> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-bench-serve-'));
  const state = path.join(dir, 'state');
  writeFileSync(path.join(dir, 'serve.yaml'), configText(nodes));
  const env = {
    ...process.env,
    ...{ PGPASSWORD: nodes[0]!.cl.password, PGREVOKE_STATE_DIR: state, NO_COLOR: '1', PGREVOKE_TRACE: '1' },
    ...{ PGREVOKE_SCIM_TOKEN: TOKEN, PGREVOKE_GITHUB_SECRET: SECRET },
  };
  const args = ['--import', `data:text/javascript,${encodeURIComponent(PROBE)}`, BIN, 'serve', '--config', path.join(dir, 'serve.yaml')];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const svc: Service = { child, url: '', dir, state, lines: [] };
  let rest = '';
  child.stderr!.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop()!;
    for (const l of parts) {
      const m = /^@([\d.]+) (.*)$/.exec(l);
      svc.lines.push(m ? { at: Number(m[1]), text: m[2]! } : { at: NaN, text: l });
    }
  });
  let exited: number | null | undefined;
  child.on('exit', (c) => (exited = c));
  const up = await waitUntil(() => {
    if (exited !== undefined) throw new Error(`pgrevoke serve exited ${exited}:\n${svc.lines.map((l) => l.text).join('\n')}`);
    const m = svc.lines.map((l) => /listening on (http:\/\/\S+?);/.exec(l.text)).find(Boolean);
    if (m) svc.url = m[1]!;
    return Boolean(m);
  }, 30_000);
  if (!up) throw new Error('pgrevoke serve did not listen within 30 s');
  return svc;
}

async function stopService(s: Service): Promise<void> {
  const gone = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await Promise.race([gone, sleep(10_000)]);
  if (s.child.exitCode === null) s.child.kill('SIGKILL');
}

interface JournalLine {
  type: string;
  id?: string;
  at?: string;
  event?: { id: string; receivedAt: string; identity: { user?: string; github?: string }; action: string };
  outcome?: { status: string };
}

function journal(s: Service): JournalLine[] {
  let text: string;
  try {
    text = readFileSync(path.join(s.state, 'serve', 'journal.jsonl'), 'utf8');
  } catch {
    return [];
  }
  // after the last newline: nothing, or a line being appended
  return text
    .split('\n')
    .slice(0, -1)
    .map((l) => JSON.parse(l) as JournalLine);
}

interface AuditLine {
  time: string;
  node: string;
  action: string;
  event?: { id: string };
}

function auditOf(s: Service, id: string): AuditLine[] {
  const text = readFileSync(path.join(s.dir, 'audit.jsonl'), 'utf8');
  return text
    .split('\n')
    .slice(0, -1)
    .map((l) => JSON.parse(l) as AuditLine)
    .filter((l) => l.event?.id === id);
}

// ---- the requests ----

const scim = (s: Service, method: string, p: string, body: unknown) =>
  client().request(
    `${s.url}/scim/v2${p}`,
    method,
    { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/scim+json' },
    JSON.stringify(body),
  );

/** A fresh user mapped to mallory (a SCIM create touches no database). */
async function provision(s: Service, userName: string): Promise<string> {
  const r = await scim(s, 'POST', '/Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName,
    name: { givenName: 'Mallory', familyName: 'Bench' },
    emails: [{ primary: true, value: userName, type: 'work' }],
    active: true,
  });
  if (r.status !== 201) throw new Error(`POST /Users: ${r.status} ${r.body}`);
  return (JSON.parse(r.body) as { id: string }).id;
}

/** organization member_removed of `login` in acme, signed as GitHub signs it (X-Hub-Signature-256 over the raw body). */
function githubRemoval(s: Service, login: string): Promise<Answer> {
  const body = JSON.stringify({
    action: 'member_removed',
    membership: { url: `https://api.github.com/orgs/acme/memberships/${login}`, state: 'active', role: 'member', user: { login, id: 1 } },
    organization: { login: 'acme', id: 2 },
    sender: { login: 'admin', id: 3 },
  });
  const sig = createHmac('sha256', SECRET).update(body).digest('hex');
  const headers = {
    'content-type': 'application/json',
    'x-github-event': 'organization',
    'x-github-delivery': randomUUID(),
    'x-hub-signature-256': `sha256=${sig}`,
  };
  return client().request(`${s.url}/github`, 'POST', headers, body);
}

/** The deactivating request, timed by the client process; the event's journal id. */
async function deactivate(s: Service, provider: Provider, user: string): Promise<Answer & { id: string }> {
  if (provider === 'github') {
    const r = await githubRemoval(s, 'mallory-gh');
    return { ...r, id: (JSON.parse(r.body) as { id?: string }).id ?? '' };
  }
  const r = await scim(s, 'PATCH', `/Users/${await provision(s, user)}`, OKTA_DEACTIVATE);
  let id = '';
  await waitUntil(() => {
    const e = journal(s).find((l) => l.type === 'accepted' && l.event?.identity.user === user && l.event.action === 'deactivate');
    id = e?.event?.id ?? '';
    return Boolean(e);
  }, 5_000);
  return { ...r, id };
}

/** The service's first event (a role no target has: outcome absent): the worker's modules load then, not in a trial. */
async function warmUp(s: Service): Promise<number> {
  const r = await githubRemoval(s, 'nobody-gh');
  const id = (JSON.parse(r.body) as { id?: string }).id;
  let doneAt = NaN;
  await waitUntil(() => {
    const d = journal(s).find((l) => l.type === 'done' && l.id === id);
    if (d?.at) doneAt = Date.parse(d.at);
    return Boolean(d);
  }, 60_000);
  return doneAt - r.sendAt;
}

// ---- a trial ----

async function backends(nodes: Node[]): Promise<number> {
  let n = 0;
  for (const x of nodes) {
    const { rows } = await x.admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'mallory'`);
    n += rows[0]!.n;
  }
  return n;
}

/** initdb's pg_hba.conf and a reload, LOGIN back, then SESSIONS sessions per node connected and querying. */
async function reset(nodes: Node[]): Promise<Attacker[]> {
  for (const n of nodes) {
    writeFileSync(n.cl.hbaFile, n.hba);
    await n.admin.query(`SELECT pg_reload_conf()`);
    await n.admin.query(`ALTER ROLE mallory LOGIN CONNECTION LIMIT -1`);
  }
  const attackers = nodes.map(
    (n) =>
      new Attacker({
        ...{ host: '127.0.0.1', port: n.cl.port, user: 'mallory', password: 'm' },
        ...{ sessions: SESSIONS, intervalMs: INTERVAL_MS, query: ATTACK_QUERY, serverStampColumn: 'at' },
      }),
  );
  for (const a of attackers) a.start();
  const ok = await waitUntil(async () => (await backends(nodes)) >= SESSIONS * nodes.length, 60_000, 100);
  if (!ok) throw new Error(`bench serve: not every attacker session connected (${await backends(nodes)} of ${SESSIONS * nodes.length})`);
  await sleep(500);
  return attackers;
}

/** Which of the service's files an fsync was for (a directory's, after a create or a rename in it, goes with its file). */
function fileKind(p: string): string {
  const b = path.basename(p);
  const dir = !b.includes('.');
  if (p.includes(`${path.sep}records`)) return 'cutoff record (datasync per line)';
  if (b.startsWith('journal')) return 'serve journal';
  if (b.startsWith('audit')) return 'audit log';
  if (b.includes('scim-users') || (dir && b === 'serve')) return 'SCIM user store';
  if (b.includes('pg_hba') || (dir && (b === 'data' || b === 'hba-backups'))) return 'pg_hba.conf and its backup';
  return `other (${b})`;
}

const first = (s: Service, from: number, re: RegExp) => s.lines.slice(from).find((l) => re.test(l.text))?.at ?? NaN;

/** The server-side milestones of event `id`, from the probe's lines (after `from`), the journal and the audit log. */
function serverMilestones(s: Service, from: number, id: string, request: string): Partial<Record<Milestone, number>> {
  const j = journal(s);
  const accepted = j.find((l) => l.type === 'accepted' && l.event?.id === id);
  const done = j.find((l) => l.type === 'done' && l.id === id);
  const audit = auditOf(s, id);
  const at = (a: AuditLine | undefined) => (a ? Date.parse(a.time) : NaN);
  const byNode = new Map<string, AuditLine[]>();
  for (const a of audit) if (a.node !== '-') byNode.set(a.node, [...(byNode.get(a.node) ?? []), a]);
  // audit lines carry each step's start only: a node's contain is over by the time its next step starts
  const contains = [...byNode.values()].map((ls) => {
    const sorted = [...ls].sort((a, b) => at(a) - at(b));
    const i = sorted.findIndex((l) => l.action === 'contain');
    return { start: at(sorted[i]), end: at(sorted.slice(i + 1).find((l) => l.action !== 'contain')) };
  });
  return {
    'request arrived': first(s, from, new RegExp(`^probe request ${request}`)),
    'journal: event created': accepted ? Date.parse(accepted.event!.receivedAt) : NaN,
    'journal fsync\u2019d (serve_received)': at(audit.find((a) => a.action === 'serve_received')),
    '2xx out': first(s, from, new RegExp(`^probe response 2\\d\\d ${request}`)),
    'worker: cutoff started': first(s, from, /^trace [\d.]+ ms cutoff module loaded$/),
    'sessions open': first(s, from, /^trace [\d.]+ ms session open$/),
    'plan built': first(s, from, /^trace [\d.]+ ms plan built$/),
    'record written': first(s, from, /^trace [\d.]+ ms record written$/),
    'contain start (last node)': Math.max(...contains.map((c) => c.start)),
    'contain\u2019s next step started (last node)': Math.max(...contains.map((c) => c.end)),
    'outcome journaled': done?.at ? Date.parse(done.at) : NaN,
  };
}

async function trial(s: Service, nodes: Node[], provider: Provider, label: string): Promise<Trial> {
  const attackers = await reset(nodes);
  const load = os.loadavg()[0]!;
  try {
    const mark = s.lines.length;
    const user = `mallory+${label}@example.com`;
    const r = await deactivate(s, provider, user);
    let done: JournalLine | undefined;
    await waitUntil(() => Boolean((done = journal(s).find((l) => l.type === 'done' && l.id === r.id))), 120_000);
    const successes = () => attackers.reduce((a, x) => a + x.stats.successes, 0);
    const seen = successes();
    await sleep(2000);
    const escapes = successes() - seen;
    const liveAfter = await backends(nodes);
    const last = Math.max(...attackers.map((a) => a.stats.lastServerAt ?? NaN));
    // the PATCH's path ends in the user's id: matched by its start (the POST before it is another method)
    const server = serverMilestones(s, mark, r.id, provider === 'scim' ? 'PATCH /scim/v2/Users/' : 'POST /github$');
    const t = Object.fromEntries(MILESTONES.map((m) => [m, NaN])) as Record<Milestone, number>;
    Object.assign(t, server, { 'client send': r.sendAt, '2xx at client': r.respAt, 'last attacker success': last });
    const status = done?.outcome?.status ?? 'no outcome within 120 s';
    const fsyncs = s.lines
      .slice(mark)
      .map((l) => ({ at: l.at, m: /^probe fsync ([\d.]+) ms (.*)$/.exec(l.text) }))
      .filter((x) => x.m && x.at >= t['request arrived'] && x.at <= t['outcome journaled'] + 1)
      .map((x) => ({ at: x.at, ms: Number(x.m![1]), file: fileKind(x.m![2]!) }));
    const lastAfterReport = last > t['outcome journaled'];
    return { provider, status, httpStatus: r.status, t, escapes, lastAfterReport, liveAfter, load, fsyncs };
  } finally {
    await Promise.all(attackers.map((a) => a.stop()));
  }
}

// ---- the run ----

interface Placement {
  name: PlacementName;
  nodes: Node[];
  svc: Service;
  trials: Trial[];
  /** The service's first event (warm-up, role absent): its send to its outcome, ms. */
  cold: number;
}

async function startNode(): Promise<Node> {
  const cl = new EmbeddedCluster({ password: 'bench', settings: { max_connections: 200, shared_buffers: "'16MB'" } });
  await cl.start();
  const admin = new pg.Client({ connectionString: cl.url() });
  await admin.connect();
  await admin.query(`CREATE ROLE mallory LOGIN PASSWORD 'm'`);
  return { cl, admin, hba: readFileSync(cl.hbaFile, 'utf8'), dsn: `host=127.0.0.1 port=${cl.port} user=postgres dbname=postgres` };
}

/** Round i: each placement in turn (the first alternating), a SCIM trial each; then one GitHub trial per placement. */
async function runTrials(placements: Placement[]): Promise<void> {
  const one = async (pl: Placement, provider: Provider, label: string) => {
    const t = await trial(pl.svc, pl.nodes, provider, label);
    const c = t.t['last attacker success'] - t.t['client send'];
    console.error(
      `${label} ${pl.name} ${provider}: ${t.status}, containment ${c.toFixed(0)} ms from the send, ${t.escapes} escapes, load ${t.load.toFixed(1)}`,
    );
    pl.trials.push(t);
  };
  for (let i = 0; i < TRIALS; i++)
    for (const pl of i % 2 ? [...placements].reverse() : placements) await one(pl, 'scim', `t${i}-${pl.nodes.length}`);
  for (const pl of placements) await one(pl, 'github', `gh-${pl.nodes.length}`);
}

export async function benchServe(): Promise<string> {
  const load = os.loadavg();
  const nodes: Node[] = [];
  const placements: Placement[] = [];
  try {
    for (let i = 0; i < CLUSTERS; i++) nodes.push(await startNode());
    for (const [name, ns] of [
      ['1 node', nodes.slice(0, 1)],
      [`${CLUSTERS} nodes`, nodes],
    ] as [PlacementName, Node[]][]) {
      const svc = await startService(ns);
      placements.push({ name, nodes: ns, svc, trials: [], cold: await warmUp(svc) });
    }
    await runTrials(placements);
    return render(placements, nodes[0]!.cl.major, load, os.loadavg());
  } finally {
    theClient?.stop();
    for (const pl of placements) await stopService(pl.svc);
    for (const n of nodes) {
      await n.admin.end().catch(() => undefined);
      await n.cl.destroy();
    }
  }
}

// ---- the section ----

const fmt = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : 'n/a');
const since = (t: Trial, m: Milestone, from: Milestone = 'client send') => t.t[m] - t.t[from];
const med = (ts: Trial[], f: (t: Trial) => number) => {
  const xs = ts.map(f).filter(Number.isFinite);
  return xs.length ? median(xs) : NaN;
};
const max = (ts: Trial[], f: (t: Trial) => number) => Math.max(...ts.map(f));

function row(pl: Placement, provider: Provider): string {
  const ts = pl.trials.filter((t) => t.provider === provider);
  const fromSend = (t: Trial) => since(t, 'last attacker success');
  const from2xx = (t: Trial) => since(t, 'last attacker success', '2xx out');
  const cells = [
    pl.name,
    provider === 'scim' ? 'SCIM PATCH (Okta)' : 'GitHub member_removed',
    String(ts.length),
    `**${fmt(med(ts, fromSend))}**`,
    fmt(max(ts, fromSend)),
    ts.map((t) => fromSend(t).toFixed(0)).join(', '),
    fmt(med(ts, from2xx)),
    fmt(max(ts, from2xx)),
    fmt(med(ts, (t) => since(t, '2xx at client'))),
    String(ts.reduce((a, t) => a + t.escapes, 0)),
    String(ts.filter((t) => t.lastAfterReport).length),
    String(ts.reduce((a, t) => a + t.liveAfter, 0)),
    [...new Set(ts.map((t) => `${t.httpStatus} ${t.status}`))].join(', '),
  ];
  return `| ${cells.join(' | ')} |`;
}

/** Segments of the path, from the milestones (medians over the SCIM trials). */
const SEGMENTS: [string, Milestone, Milestone][] = [
  ['client send to request arrived (connect, headers)', 'client send', 'request arrived'],
  ['2xx latency, server side (request arrived to 2xx out)', 'request arrived', '2xx out'],
  ['request arrived to journal event created (body, token, SCIM PATCH, mapping)', 'request arrived', 'journal: event created'],
  ['journal append + fsync', 'journal: event created', 'journal fsync\u2019d (serve_received)'],
  ['fsync\u2019d to 2xx out (audit lines, SCIM store write)', 'journal fsync\u2019d (serve_received)', '2xx out'],
  ['worker pick-up (journal fsync\u2019d to runCutoff entered)', 'journal fsync\u2019d (serve_received)', 'worker: cutoff started'],
  ['cutoff: connect to every target', 'worker: cutoff started', 'sessions open'],
  ['cutoff: plan, snapshot (read-only)', 'sessions open', 'plan built'],
  ['cutoff: write-ahead record (fsync)', 'plan built', 'record written'],
  ['cutoff: record written to the last attacker success (contain: NOLOGIN and terminate)', 'record written', 'last attacker success'],
  ['last attacker success to outcome journaled (settle, hba, verify...)', 'last attacker success', 'outcome journaled'],
];

function breakdown(placements: Placement[]): string {
  const scim = placements.map((pl) => pl.trials.filter((t) => t.provider === 'scim'));
  const head = `| | ${placements.map((pl) => pl.name).join(' | ')} |\n|---|${placements.map(() => '---|').join('')}`;
  const milestones = MILESTONES.map((m) => `| ${m} | ${scim.map((ts) => fmt(med(ts, (t) => since(t, m)))).join(' | ')} |`);
  const segments = SEGMENTS.map(([label, a, b]) => `| ${label} | ${scim.map((ts) => fmt(med(ts, (t) => since(t, b, a)))).join(' | ')} |`);
  return `Milestones, median ms after the client's send (SCIM trials):\n\n${head}\n${milestones.join('\n')}\n\nSegments, median ms:\n\n${head}\n${segments.join('\n')}\n\n${fsyncTable(placements, scim)}`;
}

/** Per file kind: fsyncs per event and their time (medians over the SCIM trials), and how many of them came before the 2xx. */
function fsyncTable(placements: Placement[], scim: Trial[][]): string {
  const kinds = [...new Set(scim.flatMap((ts) => ts.flatMap((t) => t.fsyncs.map((f) => f.file))))].sort();
  const cell = (ts: Trial[], k: string) => {
    const of = (t: Trial) => t.fsyncs.filter((f) => f.file === k);
    const n = med(ts, (t) => of(t).length);
    const before = med(ts, (t) => of(t).filter((f) => f.at <= t.t['2xx out']).length);
    return `${n} (${before} before the 2xx), ${med(ts, (t) => of(t).reduce((a, f) => a + f.ms, 0)).toFixed(1)} ms`;
  };
  const head = `| file | ${placements.map((pl) => pl.name).join(' | ')} |\n|---|${placements.map(() => '---|').join('')}`;
  const rows = kinds.map((k) => `| ${k} | ${scim.map((ts) => cell(ts, k)).join(' | ')} |`);
  const cold = placements.map((pl) => `${pl.name} ${fmt(pl.cold)}`).join(', ');
  return `The service's fsyncs per event (FileHandle.sync, stamped by the probe; median count per event, how many before the 2xx, median total time):\n\n${head}\n${rows.join('\n')}\n\nEach service's first event (before the trials, a role no target has; the worker's modules load then): send to outcome journaled ${cold}.`;
}

/** The build measured: HEAD, and whether src/ had uncommitted changes (npm run bench builds the working tree). */
function build(): string {
  const git = (...a: string[]) => execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' }).trim();
  try {
    const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
    return `the build of ${git('rev-parse', '--short', 'HEAD')}${dirty ? ` with ${dirty} uncommitted file(s) under src/ (npm run bench builds the working tree)` : ''}`;
  } catch {
    return 'the working tree';
  }
}

function render(placements: Placement[], major: number, load0: number[], load1: number[]): string {
  const loads = placements.flatMap((pl) => pl.trials.map((t) => t.load));
  const verdict = placements
    .map((pl, i) => {
      const ts = pl.trials.filter((t) => t.provider === 'scim');
      const c = (t: Trial) => since(t, 'last attacker success');
      const target = i === 0 ? 1000 : 2000;
      return `**${pl.name}**: median ${fmt(med(ts, c))}, max ${fmt(max(ts, c))} (target under ${target / 1000} s: ${max(ts, c) < target ? 'met by every trial' : med(ts, c) < target ? 'met by the median, not by every trial' : 'not met'})`;
    })
    .join('; ');
  return `## serve: from the identity provider's request to the role's last session

Measured ${new Date().toISOString().slice(0, 10)}, ${build()}, on ${machine()} (nproc ${os.availableParallelism()}); embedded PostgreSQL ${major}, ${CLUSTERS} clusters
(\`shared_buffers\` 16MB); 1-minute load average ${load0[0]!.toFixed(2)} (5-minute ${load0[1]!.toFixed(2)}) when the run began, ${load1[0]!.toFixed(2)} at its end,
${Math.min(...loads).toFixed(1)} to ${Math.max(...loads).toFixed(1)} at the trials' starts (the machine is shared). ${TRIALS} SCIM trials per placement, alternating
(the first placement of a round alternating), then one GitHub trial each. \`pgrevoke serve --config\` as a subprocess, one per placement
(plain HTTP on 127.0.0.1, the SCIM token and the GitHub secret in its environment, \`targets:\` the node's or the ${CLUSTERS} nodes' DSNs, the default
playbook compromised-credential, \`identities:\` mapping \`mallory+...@example.com\` and \`mallory-gh\` to the role mallory).
Attack: on every node of the placement ${SESSIONS} sessions of mallory run a query every ${INTERVAL_MS} ms and reconnect at once when cut
(the bench's own process; the other placement's nodes are idle). Before every trial: initdb's pg_hba.conf and a reload, LOGIN and
CONNECTION LIMIT -1 on every node of the placement, all its sessions back, a fresh SCIM user (\`POST /Users\`, which touches no database).
Request: Okta's \`PATCH /Users/{id}\` \`{"op":"replace","value":{"active":false}}\` (no path), or a GitHub \`organization\` \`member_removed\`
signed with HMAC-SHA256. Containment = the last successful attacker query by the server's \`clock_timestamp()\` (as bench/cutoff.ts) minus
the client's send time, or minus the moment the service's 2xx went out (its response's end, stamped in the service by a probe loaded with
\`node --import\`: every stderr line, each request's arrival and each response's end stamped with the epoch clock). Escapes = attacker queries
that succeeded in the 2 s after the bench read the outcome from the journal; "after report" = trials whose last success ran after the
outcome was journaled. Live backends of the role counted at the end of those 2 s.

| placement | request | trials | containment from the send (median) | (max) | every trial (ms) | from the 2xx out (median) | (max) | 2xx at the client (median) | escapes | last success after report | live backends after | HTTP status, outcome |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${placements.map((pl) => row(pl, 'scim')).join('\n')}
${placements.map((pl) => row(pl, 'github')).join('\n')}

${verdict}.

${breakdown(placements)}

${readFileSync(path.join(ROOT, 'bench', 'serve-notes.md'), 'utf8').trim()}`;
}
