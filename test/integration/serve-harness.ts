// pgrevoke serve as a subprocess for the serve-* tests: a config written to a temp directory of
// its own (state directory, audit log), the service started and its bound address read from its
// first log line, a GitHub delivery signed as GitHub signs it, the journal and audit log read back.
import { createHmac, randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCli, type CliRun } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

export const SCIM_TOKEN = 'test-scim-token-0123456789abcdef';
export const GITHUB_SECRET = "It's a Secret to Everybody";

export interface ServeDir {
  dir: string;
  state: string;
  config: string;
  audit: string;
  env: NodeJS.ProcessEnv;
}

/** A fresh directory with `config` (YAML text; `audit_log: audit.jsonl` is relative to it). */
export async function serveDir(config: string): Promise<ServeDir> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-serve-'));
  const state = path.join(dir, 'state');
  await fs.writeFile(path.join(dir, 'serve.yaml'), config);
  return {
    dir,
    state,
    config: path.join(dir, 'serve.yaml'),
    audit: path.join(dir, 'audit.jsonl'),
    env: { PGREVOKE_STATE_DIR: state, PGREVOKE_SCIM_TOKEN: SCIM_TOKEN, PGREVOKE_GITHUB_SECRET: GITHUB_SECRET },
  };
}

/** The config's common part: listen on a free loopback port, both endpoints, the audit log in the directory. */
export function baseConfig(extra: string): string {
  return [
    'listen: 127.0.0.1:0',
    'scim: { token_env: PGREVOKE_SCIM_TOKEN }',
    'github: { secret_env: PGREVOKE_GITHUB_SECRET, org: acme }',
    'audit_log: audit.jsonl',
    extra,
  ].join('\n');
}

export interface Service {
  run: CliRun;
  url: string;
  stderr(): string;
}

/** Start `pgrevoke serve --config` (plus `args`) and wait for its listening line. */
export async function startServe(d: ServeDir, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Service> {
  const run = startCli(['serve', '--config', d.config, ...args], { ...d.env, ...env }, { timeoutMs: 120_000 });
  let code: number | null | undefined;
  void run.exited.then((c) => (code = c));
  const url = await waitFor(
    async () => {
      if (code !== undefined) throw new Error(`serve exited ${code}:\n${run.stderr()}`);
      return /listening on (https?:\/\/[^\s;]+)/.exec(run.stderr())?.[1];
    },
    20_000,
    'serve to listen',
  ).catch((err: Error) => {
    throw new Error(`${err.message}; its stderr:\n${run.stderr()}`);
  });
  return { run, url, stderr: () => run.stderr() };
}

/** A GitHub delivery: the body signed with the secret (X-Hub-Signature-256), a fresh delivery id unless given. */
export function githubDelivery(
  event: string,
  payload: unknown,
  opts: { delivery?: string; secret?: string } = {},
): { headers: Record<string, string>; body: string } {
  const body = JSON.stringify(payload);
  const sig = createHmac('sha256', opts.secret ?? GITHUB_SECRET)
    .update(body)
    .digest('hex');
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': opts.delivery ?? randomUUID(),
      'x-hub-signature-256': `sha256=${sig}`,
    },
  };
}

/** organization member_removed for `login` in org acme (the fields the adapter reads, as GitHub sends them). */
export function memberRemoved(login: string): unknown {
  return {
    action: 'member_removed',
    membership: { url: `https://api.github.com/orgs/acme/memberships/${login}`, state: 'active', role: 'member', user: { login, id: 1 } },
    organization: { login: 'acme', id: 2 },
    sender: { login: 'admin', id: 3 },
  };
}

export async function postGithub(s: Service, d: { headers: Record<string, string>; body: string }): Promise<Response> {
  return fetch(`${s.url}/github`, { method: 'POST', headers: d.headers, body: d.body });
}

export interface JournalLineRead {
  type: string;
  event?: { id: string; key: string; provider: string };
  id?: string;
  roles?: string[] | null;
  outcome?: { status: string; records: string[]; detail: string | null };
}

export async function journal(d: ServeDir, dryRun = false): Promise<JournalLineRead[]> {
  const text = await fs.readFile(path.join(d.state, 'serve', dryRun ? 'journal-dry-run.jsonl' : 'journal.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .slice(0, -1) // after the last newline: nothing, or a line being appended
    .map((l) => JSON.parse(l) as JournalLineRead);
}

/** The outcome the journal has for event `id`, once it has one. */
export async function outcomeOf(d: ServeDir, id: string, ms = 30_000, dryRun = false): Promise<NonNullable<JournalLineRead['outcome']>> {
  return waitFor(
    async () => (await journal(d, dryRun)).find((l) => l.type === 'done' && l.id === id)?.outcome,
    ms,
    `the outcome of event ${id}`,
  );
}

export interface AuditLineRead {
  action: string;
  result: string;
  reason: string;
  target: string;
  detail: string | null;
  node: string;
  event?: { id: string; provider: string };
}

/** Whole lines of the audit log (a line being appended is left out). */
export async function auditLines(d: ServeDir): Promise<AuditLineRead[]> {
  const text = await fs.readFile(d.audit, 'utf8').catch(() => '');
  return text
    .split('\n')
    .slice(0, -1)
    .map((l) => JSON.parse(l) as AuditLineRead);
}

/** SIGTERM, and the exit code. */
export async function stopServe(s: Service): Promise<number | null> {
  s.run.signal('SIGTERM');
  return s.run.exited;
}

/** A SCIM request with the bearer token; `body` is sent as JSON. */
export function scimRequest(s: Service, method: string, p: string, body?: unknown): Promise<Response> {
  return fetch(`${s.url}/scim/v2${p}`, {
    method,
    headers: { authorization: `Bearer ${SCIM_TOKEN}`, 'content-type': 'application/scim+json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A PATCH of `active` as Entra ID sends it (`path: active`), or as Okta does (no path, the value an object). */
export function activePatch(value: boolean, form: 'entra' | 'okta' = 'entra'): unknown {
  return {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [form === 'entra' ? { op: 'replace', path: 'active', value } : { op: 'replace', value: { active: value } }],
  };
}

/** The id of the first event accepted whose key ends with `:action` (deactivate, reactivate). */
export function acceptedEventId(d: ServeDir, action: string): Promise<string> {
  return waitFor(
    async () => (await journal(d)).find((l) => l.type === 'accepted' && l.event?.key.endsWith(`:${action}`))?.event?.id,
    10_000,
    `the ${action} event`,
  );
}
