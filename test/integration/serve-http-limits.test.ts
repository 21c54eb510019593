// pgrevoke serve's HTTP front against unauthenticated memory exhaustion (issue 17's red team: 300
// connections each sending about 1 MiB to /github raised the service's RSS from 64 to 377 MB for up
// to 30 s). Over real sockets to `pgrevoke serve` as a subprocess: a /github request without a
// well-formed signature header is refused on its headers, its body never read; the bodies read
// before their signature is checked share a 16 MiB budget (503 with Retry-After beyond it); the
// server holds at most 256 connections.
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { baseConfig, githubDelivery, postGithub, serveDir, startServe, stopServe, type Service, type ServeDir } from './serve-harness.js';

const MIB = 1024 * 1024;

interface Raw {
  socket: net.Socket;
  data: () => string;
  closed: () => boolean;
}

async function open(url: string): Promise<Raw> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  let data = '';
  let closed = false;
  socket.on('data', (b: Buffer) => (data += b.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => resolve());
  });
  return { socket, data: () => data, closed: () => closed };
}

/** The head of a POST /github declaring a 1 MiB body; the body is not sent. */
const head = (sig: string | null) =>
  [
    'POST /github HTTP/1.1',
    'Host: 127.0.0.1',
    'Content-Type: application/json',
    `Content-Length: ${MIB}`,
    'X-GitHub-Event: ping',
    'X-GitHub-Delivery: 00000000-0000-0000-0000-000000000000',
    ...(sig === null ? [] : [`X-Hub-Signature-256: ${sig}`]),
    '',
    '',
  ].join('\r\n');

describe('serve: the HTTP front holds bounded memory for unauthenticated clients', () => {
  let d: ServeDir;
  let s: Service;

  beforeAll(async () => {
    d = await serveDir(baseConfig(`targets: [ "host=127.0.0.1 port=1 user=pgrevoke dbname=postgres" ]\nidentities: []\n`));
    s = await startServe(d);
  });

  afterAll(async () => {
    if (s) expect(await stopServe(s)).toBe(0);
    if (d) await fs.rm(d.dir, { recursive: true, force: true });
  });

  it('at most 256 connections: the ones past them are closed as they arrive', async () => {
    const socks: Raw[] = [];
    for (let i = 0; i < 300; i++) socks.push(await open(s.url));
    await waitFor(async () => (socks.filter((x) => x.closed()).length >= 44 ? true : undefined), 5_000, '44 closed').catch(() => undefined);
    expect(socks.filter((x) => x.closed()).length).toBe(44);
    expect(socks.slice(0, 200).every((x) => !x.closed())).toBe(true);
    for (const x of socks) x.socket.destroy();
    await waitFor(async () => ((await fetch(`${s.url}/healthz`)).status === 200 ? true : undefined), 10_000, 'healthz');
  });

  it('no well-formed X-Hub-Signature-256 header: 401 on the headers, the body not awaited', async () => {
    for (const sig of [null, 'sha1=abc', `sha256=${'z'.repeat(64)}`]) {
      const c = await open(s.url);
      c.socket.write(head(sig));
      await waitFor(async () => (/^HTTP\/1\.1 401/.test(c.data()) ? true : undefined), 5_000, `401 for ${sig}`);
      c.socket.destroy();
    }
  });

  it('unauthenticated bodies in flight beyond 16 MiB: 503 with Retry-After; the budget comes back', async () => {
    const socks: Raw[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await open(s.url);
      // well-formed, and wrong: the body has to be read before the HMAC can say so
      c.socket.write(head(`sha256=${'0'.repeat(64)}`) + 'x'.repeat(10));
      socks.push(c);
    }
    const busy = () => socks.filter((x) => /^HTTP\/1\.1 503/.test(x.data()));
    await waitFor(async () => (busy().length >= 4 ? true : undefined), 5_000, 'four 503s').catch(() => undefined);
    expect(busy().length).toBe(4);
    expect(busy().every((x) => /\r\nretry-after: \d+\r\n/i.test(x.data()))).toBe(true);
    expect(socks.filter((x) => x.data() !== '').length).toBe(4);
    for (const x of socks) x.socket.destroy();
    // the held bodies' room is given back as their connections go: a signed delivery is answered
    const ok = await waitFor(
      async () => {
        const r = await postGithub(s, githubDelivery('ping', { zen: 'Keep it logically awesome.', hook_id: 1 }));
        return r.status === 503 ? undefined : r.status;
      },
      10_000,
      'a delivery taken',
    );
    expect(ok).toBeLessThan(300);
  });
});
