// pgrevoke serve's HTTP front as a client meets it (the CLI as a subprocess, real HTTP): /healthz
// without auth and without detail; the SCIM token on /scim/v2 and /status (wrong or missing: 401,
// nothing journaled or audited); a body over 1 MiB (413); a content type that is not JSON (415);
// plain HTTP refused on 0.0.0.0; TLS with a self-signed certificate; config errors with file, line
// and field; a secret's variable not set; SIGHUP with a bad config keeps the one in force; SIGTERM
// exits 0. No event reaches a database here: the target is never connected to.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import {
  auditLines,
  baseConfig,
  githubDelivery,
  journal,
  memberRemoved,
  SCIM_TOKEN,
  serveDir,
  startServe,
  stopServe,
  type Service,
  type ServeDir,
} from './serve-harness.js';

const TARGET = 'targets: [ "host=127.0.0.1 port=1 user=postgres dbname=postgres" ]';
const dirs: ServeDir[] = [];
const services: Service[] = [];

async function started(config = baseConfig(TARGET), args: string[] = []): Promise<{ d: ServeDir; s: Service }> {
  const d = await serveDir(config);
  dirs.push(d);
  const s = await startServe(d, args);
  services.push(s);
  return { d, s };
}

/** POST /github with `chunks` written one by one; the status the server answers (it may close before the last is sent). */
function post(s: Service, headers: Record<string, string>, chunks: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${s.url}/github`, { method: 'POST', headers }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

afterAll(async () => {
  for (const s of services) s.run.signal('SIGKILL');
  await Promise.all(services.map((s) => s.run.exited));
  await Promise.all(dirs.map((d) => fs.rm(d.dir, { recursive: true, force: true })));
});

describe('pgrevoke serve: HTTP', () => {
  it('GET /healthz needs no token and says nothing more; /status needs the SCIM token; SIGTERM exits 0', async () => {
    const { d, s } = await started();
    const h = await fetch(`${s.url}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ ok: true });

    expect((await fetch(`${s.url}/status`)).status).toBe(401);
    expect((await fetch(`${s.url}/status`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const st = await fetch(`${s.url}/status`, { headers: { authorization: `Bearer ${SCIM_TOKEN}` } });
    expect(st.status).toBe(200);
    expect(await st.json()).toEqual({ queueDepth: 0, dryRun: false, lastEvent: null, lastError: null, lastUnmapped: null });
    expect(await stopServe(s)).toBe(0);
    expect(s.stderr()).toContain('SIGTERM: draining');
    expect(await journal(d)).toEqual([]);
  });

  it('SCIM without the token, with a wrong one, or with its prefix: 401 in the SCIM error schema, nothing journaled or audited', async () => {
    const { d, s } = await started();
    const body = JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'alice@example.com' });
    for (const authorization of [undefined, 'Bearer nope', `Bearer ${SCIM_TOKEN.slice(0, -1)}`, `Basic ${SCIM_TOKEN}`, SCIM_TOKEN]) {
      const r = await fetch(`${s.url}/scim/v2/Users`, {
        method: 'POST',
        headers: { 'content-type': 'application/scim+json', ...(authorization ? { authorization } : {}) },
        body,
      });
      expect(r.status, String(authorization)).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      expect(await r.json()).toEqual({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '401',
        detail: expect.any(String),
      });
    }
    expect(s.stderr()).toContain('401 POST /scim/v2/Users from 127.0.0.1');
    expect(await journal(d)).toEqual([]);
    expect(await auditLines(d)).toEqual([]);
  });

  it('a body over 1 MiB is 413 (declared or streamed), a body that is not JSON 415; nothing journaled', async () => {
    const { d, s } = await started();
    const big = githubDelivery('organization', { pad: 'x'.repeat(1024 * 1024) });
    // declared: answered 413 from Content-Length, before the body is read
    expect(await post(s, big.headers, [Buffer.from(big.body)])).toBe(413);
    // streamed (chunked, no length): 413 once past 1 MiB (signed-looking: without the header it is 401 unread)
    const { 'content-type': type, 'x-hub-signature-256': sig } = big.headers;
    const chunked = { 'content-type': type!, 'x-hub-signature-256': sig!, 'transfer-encoding': 'chunked' };
    expect(await post(s, chunked, Array(20).fill(Buffer.alloc(64 * 1024, 'x')))).toBe(413);
    await waitFor(async () => s.stderr().includes('413 POST /github'), 5000, 'the 413 log line');
    const xml = await fetch(`${s.url}/github`, {
      method: 'POST',
      headers: { ...big.headers, 'content-type': 'application/xml' },
      body: '<x/>',
    });
    expect(xml.status).toBe(415);
    expect(await journal(d)).toEqual([]);
  });

  it('a client that never finishes its headers is cut off (408) by the header timeout', async () => {
    const { s } = await started();
    const { port } = new URL(s.url);
    const sock = net.connect(Number(port), '127.0.0.1');
    let got = '';
    sock.on('data', (c) => (got += c));
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
    sock.write('POST /github HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    await closed;
    expect(got).toMatch(/^HTTP\/1\.1 408 /);
  }, 30_000);

  it('a GitHub delivery with a bad signature: 401, nothing journaled or audited', async () => {
    const { d, s } = await started();
    const forged = githubDelivery('organization', memberRemoved('alice-gh'), { secret: 'not the secret' });
    const r = await fetch(`${s.url}/github`, { method: 'POST', headers: forged.headers, body: forged.body });
    expect(r.status).toBe(401);
    expect(await journal(d)).toEqual([]);
    expect(await auditLines(d)).toEqual([]);
  });

  it('plain HTTP on 0.0.0.0 is refused (exit 2) unless allow_plain_http', async () => {
    const d = await serveDir(baseConfig(TARGET).replace('listen: 127.0.0.1:0', 'listen: 0.0.0.0:0'));
    dirs.push(d);
    const r = await runCli(['serve', '--config', d.config], d.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('refusing plain HTTP on 0.0.0.0, which is not a loopback address');
    await fs.writeFile(d.config, `${await fs.readFile(d.config, 'utf8')}\nallow_plain_http: true\n`);
    const s = await startServe(d);
    services.push(s);
    expect(s.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    expect(await stopServe(s)).toBe(0);
  });

  it('TLS with a self-signed certificate: https, and the client that trusts it gets through', async () => {
    const d = await serveDir(
      baseConfig(TARGET).replace('listen: 127.0.0.1:0', 'listen: 0.0.0.0:0') + '\ntls: { cert: tls.crt, key: tls.key }\n',
    );
    dirs.push(d);
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout', path.join(d.dir, 'tls.key'), '-out', path.join(d.dir, 'tls.crt'),
    ], { stdio: 'ignore' }); // prettier-ignore
    const s = await startServe(d);
    services.push(s);
    expect(s.url).toMatch(/^https:\/\/0\.0\.0\.0:\d+$/);
    const port = Number(new URL(s.url).port);
    const ca = await fs.readFile(path.join(d.dir, 'tls.crt'));
    const get = (p: string, headers: Record<string, string> = {}, trust = true) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port, path: p, headers, ...(trust ? { ca } : {}) }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
      });
    expect(await get('/healthz')).toEqual({ status: 200, body: '{"ok":true}' });
    expect((await get('/status', { authorization: `Bearer ${SCIM_TOKEN}` })).status).toBe(200);
    // a client that does not trust the certificate refuses the connection
    await expect(get('/healthz', {}, false)).rejects.toThrow(/self-signed|self signed/);
    // plain HTTP to the TLS port gets nothing it can use
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    expect(await stopServe(s)).toBe(0);
  });

  it('config errors name file, line and field (exit 2); a secret variable not set is one line', async () => {
    const d = await serveDir(baseConfig(TARGET) + '\non_reactivate: undo\n');
    dirs.push(d);
    const bad = await runCli(['serve', '--config', d.config], d.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(new RegExp(`invalid serve config ${d.config.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:6: on_reactivate: `));
    await fs.writeFile(d.config, baseConfig(TARGET) + '\nqueue_size: 3\n');
    expect((await runCli(['serve', '--config', d.config], d.env)).stderr).toContain(':6: queue_size: unknown field "queue_size"');
    await fs.writeFile(d.config, baseConfig(''));
    expect((await runCli(['serve', '--config', d.config], d.env)).stderr).toContain('give targets: (DSNs) or fleet:');
    await fs.writeFile(d.config, baseConfig(TARGET));
    const unset = await runCli(['serve', '--config', d.config], { ...d.env, PGREVOKE_SCIM_TOKEN: '' });
    expect(unset.code).toBe(2);
    expect(unset.stderr.split('\n')[0]).toBe(
      'pgrevoke: error: scim.token_env names the environment variable PGREVOKE_SCIM_TOKEN, which is not set (or empty)',
    );
  });

  it('SIGHUP reloads; a bad new config keeps the one in force and says why on stderr', async () => {
    const { d, s } = await started();
    await fs.writeFile(d.config, baseConfig(TARGET) + '\nplaybook: no-such-playbook\n');
    s.run.signal('SIGHUP');
    await waitFor(async () => s.stderr().includes('the new config is refused, the one in force stays'), 10_000, 'the refusal');
    expect(s.stderr()).toContain('playbook not found');
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
    await fs.writeFile(d.config, baseConfig(TARGET) + '\non_reactivate: restore\n');
    s.run.signal('SIGHUP');
    await waitFor(async () => s.stderr().includes('serve.yaml reloaded'), 10_000, 'the reload');
    expect(await stopServe(s)).toBe(0);
  });
});
