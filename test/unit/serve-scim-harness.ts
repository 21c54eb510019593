// The SCIM adapter's test bench: a real state directory, a recording enqueue (a real function with
// the journal's one rule, that a key seen before is a duplicate), and a client that sends a request
// line as a provider writes it.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createScimHandler } from '../../src/serve/scim/index.js';
import type { AdapterResponse, Enqueue, ServeEventInput } from '../../src/serve/types.js';

export const BASE = 'https://pgrevoke.example:8443/scim/v2';
export const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'scim');

const made: string[] = [];

export async function tempStateDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-scim-'));
  await fs.chmod(dir, 0o700);
  made.push(dir);
  return dir;
}

/** For afterAll: the state directories made. */
export async function removeStateDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
}

export interface Recorder {
  enqueue: Enqueue;
  /** Every event accepted, in order (duplicates not repeated). */
  events: ServeEventInput[];
  /** Every call, duplicates too. */
  calls: ServeEventInput[];
}

export function recorder(): Recorder {
  const events: ServeEventInput[] = [];
  const calls: ServeEventInput[] = [];
  const enqueue: Enqueue = async (e) => {
    calls.push(e);
    const seen = events.findIndex((x) => x.key === e.key);
    if (seen >= 0) return { id: String(seen + 1), duplicate: true };
    events.push(e);
    return { id: String(events.length), duplicate: false };
  };
  return { enqueue, events, calls };
}

export type Send = (method: string, target: string, body?: unknown) => Promise<AdapterResponse & { json: Record<string, unknown> }>;

/** A client of the handler: `target` is a path below /scim/v2 (or a full request line's target with /scim/v2), `body` an object, a string sent as is, or a Buffer. */
export function client(handler: ReturnType<typeof createScimHandler>): Send {
  return async (method, target, body) => {
    const url = new URL(target.replace(/^\/scim\/v2/, ''), 'http://x');
    const rawBody =
      body === undefined
        ? Buffer.alloc(0)
        : Buffer.isBuffer(body)
          ? body
          : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const res = await handler({
      method,
      path: decodeURIComponent(url.pathname),
      query: url.searchParams,
      headers: { 'content-type': 'application/scim+json' },
      rawBody,
      baseUrl: BASE,
    });
    return { ...res, json: (res.body ?? {}) as Record<string, unknown> };
  };
}

export interface Bench {
  dir: string;
  rec: Recorder;
  send: Send;
  /** A new handler over the same directory (a restart). */
  restart(): Send;
}

export async function bench(opts: { dryRun?: boolean; enqueue?: Enqueue } = {}): Promise<Bench> {
  const dir = await tempStateDir();
  const rec = recorder();
  const make = () => client(createScimHandler({ storeDir: dir, enqueue: opts.enqueue ?? rec.enqueue, dryRun: opts.dryRun ?? false }));
  return { dir, rec, send: make(), restart: make };
}

export async function fixture(name: string): Promise<string> {
  return fs.readFile(path.join(FIXTURES, name), 'utf8');
}

export const user = (userName: string, extra: Record<string, unknown> = {}) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  userName,
  name: { givenName: 'G', familyName: 'F' },
  emails: [{ value: userName, type: 'work', primary: true }],
  active: true,
  ...extra,
});

export const patch = (...Operations: unknown[]) => ({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations });
