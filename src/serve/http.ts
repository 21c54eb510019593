// pgrevoke serve's HTTP(S) front: node:http or node:https, no framework (four routes and a body
// cap do not need one). Plain HTTP is refused on an address other than loopback unless the config
// says a TLS proxy is in front (allow_plain_http). Bodies are capped at 1 MiB (413), JSON only
// (application/scim+json or application/json, else 415), and a client slower than the header and
// request timeouts is cut off. /scim/v2/* needs the SCIM bearer token, checked in constant time
// before the body is read; /github needs a well-formed X-Hub-Signature-256 header before its body is
// read, and is handed on with its raw body (the adapter checks the HMAC signature over it). The
// bodies read before any check has passed (/github's) share a budget (UNAUTH_BODY_BUDGET, 503 with
// Retry-After beyond it), and the server holds at most MAX_CONNECTIONS connections, so that
// unauthenticated clients cannot make it hold more memory than that. GET /healthz needs nothing and
// says nothing (503 while draining); GET /status needs the token.
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { usageError } from '../errors.js';
import { signatureWellFormed } from './github/signature.js';
import type { AdapterRequest, AdapterResponse } from './types.js';

export const MAX_BODY = 1024 * 1024;
export const HEADERS_TIMEOUT_MS = 10_000;
export const REQUEST_TIMEOUT_MS = 30_000;
/** Connections held at once; one more is closed as it arrives (Node's server.maxConnections). */
export const MAX_CONNECTIONS = 256;
/** Bytes of /github bodies being read at once, before their signature is checked (16 MiB). */
export const UNAUTH_BODY_BUDGET = 16 * MAX_BODY;

/** The bytes reserved for unauthenticated bodies in flight: a request's declared length, or the cap. */
class BodyBudget {
  private used = 0;
  constructor(private readonly limit: number) {}
  /** Reserve room for the request's body; null: over the budget. */
  take(req: http.IncomingMessage): number | null {
    const declared = Number(req.headers['content-length']);
    const n = Number.isInteger(declared) && declared >= 0 && declared <= MAX_BODY ? declared : MAX_BODY;
    if (this.used + n > this.limit) return null;
    this.used += n;
    return n;
  }
  give(n: number): void {
    this.used -= n;
  }
}

export type Handler = (req: AdapterRequest) => Promise<AdapterResponse>;

export interface Routes {
  /** The SCIM token in force, or null (no SCIM endpoint); read per request (SIGHUP may change it). */
  scimToken: () => string | null;
  scim: () => Handler | null;
  github: () => Handler | null;
  status: () => unknown;
  log: (line: string) => void;
  /** False once draining: new requests are answered 503. */
  accepting: () => boolean;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const v = isIP(host);
  if (v === 4) return host.startsWith('127.');
  if (v === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

/** Refuse to listen in plain HTTP where a network could read the SCIM token (exit 2). */
export function checkListen(listen: { host: string }, tls: boolean, allowPlainHttp: boolean): void {
  if (tls || allowPlainHttp || isLoopback(listen.host)) return;
  throw usageError(
    `refusing plain HTTP on ${listen.host}, which is not a loopback address: the SCIM token and the events would cross the network in clear`,
    'give tls: { cert, key }, or listen on 127.0.0.1 behind a TLS proxy, or set allow_plain_http: true when a TLS proxy is in front',
  );
}

/** Constant-time comparison of the bearer token: digests of equal length, compared with timingSafeEqual. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  const given = createHash('sha256')
    .update(m ? m[1]! : '')
    .digest();
  const want = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, want) && m !== null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function send(res: http.ServerResponse, r: AdapterResponse): void {
  if (res.headersSent) return;
  const body = r.body === undefined ? '' : JSON.stringify(r.body);
  res.writeHead(r.status, {
    'content-type': `${r.contentType ?? 'application/json'}; charset=utf-8`,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...(r.headers ?? {}),
  });
  res.end(body);
}

const SCIM_TYPES: ReadonlySet<string> = new Set(['application/scim+json', 'application/json']);
// a GitHub webhook may be set to either content type; both are signed over the raw body
const GITHUB_TYPES: ReadonlySet<string> = new Set(['application/json', 'application/x-www-form-urlencoded']);

/** The body, at most MAX_BODY bytes (413 beyond, as soon as it is known), of a JSON content type (415). */
async function readBody(req: http.IncomingMessage, types: ReadonlySet<string>): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY) throw new HttpError(413, `body over ${MAX_BODY} bytes`);
  // events, not for-await: leaving a for-await destroys the request, and with it the socket, so the
  // client would get a reset instead of the 413. Past the cap the rest is read and dropped.
  const chunks = await new Promise<Buffer[]>((resolve, reject) => {
    const got: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > MAX_BODY) return;
      size += chunk.length;
      if (size > MAX_BODY) reject(new HttpError(413, `body over ${MAX_BODY} bytes`));
      else got.push(chunk);
    });
    req.on('end', () => resolve(got));
    req.on('error', reject);
  });
  const body = Buffer.concat(chunks);
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (body.length > 0 && !types.has(type)) throw new HttpError(415, `send ${[...types].join(' or ')}`);
  return body;
}

const SCIM_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** An error as the route's clients read errors: the SCIM error schema under /scim/v2, plain JSON elsewhere. */
function errorResponse(scim: boolean, status: number, detail: string, headers?: Record<string, string>): AdapterResponse {
  return scim
    ? { status, contentType: 'application/scim+json', body: { schemas: [SCIM_ERROR], status: String(status), detail }, headers }
    : { status, body: { error: detail }, headers };
}

async function route(req: http.IncomingMessage, res: http.ServerResponse, r: Routes, tls: boolean, budget: BodyBudget): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const p = url.pathname;
  const method = req.method ?? 'GET';
  const scim = p === '/scim/v2' || p.startsWith('/scim/v2/');
  // draining: a load balancer's health check sees it and sends the provider elsewhere
  if (p === '/healthz' && method === 'GET')
    return send(
      res,
      r.accepting() ? { status: 200, body: { ok: true } } : { status: 503, body: { ok: false }, headers: { 'retry-after': '5' } },
    );
  if (!r.accepting()) return send(res, errorResponse(scim, 503, 'shutting down', { 'retry-after': '5', connection: 'close' }));
  if (scim || p === '/status') {
    const token = r.scimToken();
    if (token === null) return send(res, errorResponse(scim, 404, 'no SCIM endpoint configured'));
    if (!tokenMatches(req.headers.authorization, token)) {
      r.log(`pgrevoke serve: 401 ${method} ${p} from ${req.socket.remoteAddress ?? '?'}: bad or missing bearer token`);
      req.resume();
      return send(res, errorResponse(scim, 401, 'a valid bearer token is required', { 'www-authenticate': 'Bearer', connection: 'close' }));
    }
    if (p === '/status')
      return method === 'GET' ? send(res, { status: 200, body: r.status() }) : send(res, errorResponse(false, 405, 'GET only'));
    const handler = r.scim();
    if (!handler) return send(res, errorResponse(true, 503, 'the SCIM adapter is not available'));
    return send(res, await handler(await adapterRequest(req, url, '/scim/v2', tls)));
  }
  if (p === '/github' || p === '/github/') {
    const handler = r.github();
    if (!handler) return send(res, errorResponse(false, 404, 'no GitHub endpoint configured'));
    if (method !== 'POST') return send(res, errorResponse(false, 405, 'POST only'));
    const from = req.socket.remoteAddress ?? '?';
    // no body is read for a request that cannot be signed: it is refused on its headers
    if (!signatureWellFormed(req.headers['x-hub-signature-256'])) {
      r.log(`pgrevoke serve: 401 POST /github from ${from}: no well-formed X-Hub-Signature-256 header`);
      return refuse(req, res, errorResponse(false, 401, 'X-Hub-Signature-256 (sha256=<hex>) is required', { connection: 'close' }));
    }
    const held = budget.take(req);
    if (held === null) {
      r.log(`pgrevoke serve: 503 POST /github from ${from}: unauthenticated bodies in flight over ${UNAUTH_BODY_BUDGET} bytes`);
      return refuse(req, res, errorResponse(false, 503, 'busy: try again', { 'retry-after': '5', connection: 'close' }));
    }
    try {
      const out = await handler(await adapterRequest(req, url, '/github', tls));
      if (out.status === 401) r.log(`pgrevoke serve: 401 POST /github from ${from}: signature refused`);
      return send(res, out);
    } finally {
      budget.give(held);
    }
  }
  return send(res, errorResponse(false, 404, 'not found'));
}

/**
 * Answer without keeping the body (what the client sends meanwhile is dropped), then close the
 * connection: ended first, so that the answer is not lost to a reset, destroyed 2 s later.
 */
function refuse(req: http.IncomingMessage, res: http.ServerResponse, r: AdapterResponse): void {
  req.resume();
  res.on('finish', () => {
    req.socket.end();
    setTimeout(() => req.socket.destroy(), 2_000).unref();
  });
  send(res, r);
}

/** A path's percent-escapes decoded; one that is not UTF-8 (`%E0`) is the client's error (400), not ours. */
function decodedPath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new HttpError(400, 'the path is not valid percent-encoded UTF-8');
  }
}

/** The request as the adapter mounted at `mount` sees it: the path below the mount, the body read (capped). */
async function adapterRequest(req: http.IncomingMessage, url: URL, mount: string, tls: boolean): Promise<AdapterRequest> {
  return {
    method: req.method ?? 'GET',
    path: decodedPath(url.pathname.slice(mount.length)),
    query: url.searchParams,
    headers: req.headers,
    rawBody: await readBody(req, mount === '/github' ? GITHUB_TYPES : SCIM_TYPES),
    baseUrl: `${tls ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}${mount}`,
  };
}

/** The server, not yet listening. */
export function createServer(r: Routes, tlsFiles: { cert: Buffer; key: Buffer } | null): http.Server {
  const tls = tlsFiles !== null;
  const budget = new BodyBudget(UNAUTH_BODY_BUDGET);
  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const scim = (req.url ?? '').startsWith('/scim/v2');
    route(req, res, r, tls, budget).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      r.log(`pgrevoke serve: ${status} ${req.method} ${req.url}: ${(err as Error).message}`);
      const detail = err instanceof HttpError ? err.message : 'internal error';
      // an oversize body: the answer, then the connection goes (what the client still sends is dropped meanwhile)
      if (status === 413) refuse(req, res, errorResponse(scim, status, detail, { connection: 'close' }));
      else send(res, errorResponse(scim, status, detail));
    });
  };
  // timeouts are checked every second, not every 30 (Node's default), so a stalled client goes in time
  const opts = {
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    keepAliveTimeout: 5_000,
    connectionsCheckingInterval: 1_000,
  };
  const server = tls ? https.createServer({ ...opts, cert: tlsFiles.cert, key: tlsFiles.key }, handle) : http.createServer(opts, handle);
  // a connection idle this long (a client that stalls mid-body) is closed
  server.setTimeout(REQUEST_TIMEOUT_MS);
  server.maxConnections = MAX_CONNECTIONS;
  return server;
}
