// pgrevoke serve's HTTP front at its edges (the CLI as a subprocess, real sockets): a path whose
// percent-escapes are not UTF-8 is the client's error (400 in the SCIM error schema), not a 500; a
// signature header that is not exactly `sha256=<64 hex>` is refused on its headers, before any body
// is read, as the adapter would refuse it; a SIGHUP whose config names an audit log that cannot be
// written safely is refused as it would be at start, and the config in force stays.
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { baseConfig, githubDelivery, SCIM_TOKEN, serveDir, startServe, stopServe, type Service, type ServeDir } from './serve-harness.js';

const TARGET = 'targets: [ "host=127.0.0.1 port=1 user=postgres dbname=postgres" ]';
const dirs: ServeDir[] = [];
const services: Service[] = [];

async function started(config = baseConfig(TARGET)): Promise<{ d: ServeDir; s: Service }> {
  const d = await serveDir(config);
  dirs.push(d);
  const s = await startServe(d);
  services.push(s);
  return { d, s };
}

afterAll(async () => {
  for (const s of services) s.run.signal('SIGKILL');
  for (const d of dirs) await fs.rm(d.dir, { recursive: true, force: true });
});

describe('serve: the HTTP front at its edges', () => {
  it('a SCIM path with an escape that is not UTF-8 (%E0) is 400 in the SCIM error schema, not 500', async () => {
    const { s } = await started();
    const res = await fetch(`${s.url}/scim/v2/Users/%E0`, { headers: { authorization: `Bearer ${SCIM_TOKEN}` } });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/scim+json');
    const body = (await res.json()) as { schemas: string[]; status: string; detail: string };
    expect(body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
    expect(body.status).toBe('400');
    expect(body.detail).not.toBe('internal error');
    expect(s.stderr()).not.toContain('pgrevoke serve: 500');
    expect(await stopServe(s)).toBe(0);
  });

  it('a signature header with a trailing byte JavaScript trims (0xA0) is refused on its headers, the body never read', async () => {
    const { s } = await started();
    const d = githubDelivery('ping', { zen: 'hi', hook_id: 1 });
    const { hostname, port } = new URL(s.url);
    const socket = net.connect(Number(port), hostname);
    let data = '';
    socket.on('data', (b: Buffer) => (data += b.toString('latin1')));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // the head only: the body it declares is never sent, so only a refusal on the headers answers
    const head = [
      'POST /github HTTP/1.1',
      'Host: 127.0.0.1',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(d.body)}`,
      `X-GitHub-Event: ping`,
      `X-GitHub-Delivery: ${d.headers['x-github-delivery']}`,
      `X-Hub-Signature-256: ${d.headers['x-hub-signature-256']}\xa0`,
      '',
      '',
    ].join('\r\n');
    socket.write(Buffer.from(head, 'latin1'));
    await waitFor(async () => data.includes('\r\n\r\n'), 5_000, 'an answer to the head alone');
    expect(data.startsWith('HTTP/1.1 401')).toBe(true);
    expect(s.stderr()).toContain('no well-formed X-Hub-Signature-256 header');
    socket.destroy();
    expect(await stopServe(s)).toBe(0);
  });

  it('SIGHUP with audit_log a symbolic link: refused as at start, and the config in force stays', async () => {
    const { d, s } = await started();
    await fs.writeFile(path.join(d.dir, 'elsewhere.jsonl'), '');
    await fs.symlink(path.join(d.dir, 'elsewhere.jsonl'), path.join(d.dir, 'link.jsonl'));
    // the new config also drops the GitHub endpoint: if it were taken, /github would be 404
    await fs.writeFile(
      d.config,
      ['listen: 127.0.0.1:0', 'scim: { token_env: PGREVOKE_SCIM_TOKEN }', 'audit_log: link.jsonl', TARGET].join('\n'),
    );
    s.run.signal('SIGHUP');
    await waitFor(async () => s.stderr().includes('the new config is refused, the one in force stays'), 10_000, 'the refusal');
    expect(s.stderr()).toContain('cannot write audit_log');
    expect(s.stderr()).toContain('it is a symbolic link');
    expect(s.stderr()).not.toContain('reloaded');
    const res = await fetch(`${s.url}/github`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    expect(await stopServe(s)).toBe(0);
  });
});
