// Connecting as libpq does without a host, against a server that listens on Unix sockets only
// (listen_addresses = ''): a temporary directory and /tmp, upstream's default. PGHOST is unset (the
// CLI's environment is BASE_ENV). No host means a socket directory, never TCP localhost; every
// failure names the socket file it tried.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedCluster, freePort } from '../../src/embedded/cluster.js';
import { defaultSocketHost, socketFile } from '../../src/pg/conninfo.js';
import { jsonDoc, runCli } from '../helpers/cli.js';
import { MAJORS } from '../helpers/cluster.js';

describe.each(MAJORS)('connection defaults on PostgreSQL %i, socket only', (major) => {
  let cl: EmbeddedCluster;
  let dir = '';
  // -U: the tests may run as root, and there is no role "root"
  const as = ['-U', 'postgres', '-d', 'postgres'];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-sock-'));
    chmodSync(dir, 0o777); // the server may run as another OS user (postgres, when the tests run as root)
    cl = new EmbeddedCluster({ major, settings: { listen_addresses: `''`, unix_socket_directories: `'${dir},/tmp'` } });
    await cl.start();
  });
  afterAll(async () => {
    await cl?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('-h DIR connects to the socket in DIR, with PGPORT for the port; without a port it names DIR/.s.PGSQL.5432', async () => {
    const ok = await runCli(['sessions', '--json', '-h', dir, ...as], { PGPORT: String(cl.port) });
    expect(ok.code, ok.stderr).toBe(0);
    expect(jsonDoc(ok)).toBeTruthy();

    const r = await runCli(['sessions', '-h', dir, ...as]);
    expect(r.code, r.stderr).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toEqual([
      `pgrevoke: error: connection to server on socket "${dir}/.s.PGSQL.5432" failed: No such file or directory [SQLSTATE 08001]`,
      'hint: Is the server running locally and accepting connections on that socket?',
    ]);
  });

  it('no host: the default socket directories, never TCP localhost; what was tried is named', async () => {
    // the server's socket in /tmp is found without -h
    const found = await runCli(['sessions', '--json', '-p', String(cl.port), ...as]);
    expect(found.code, found.stderr).toBe(0);

    // no server on this port: the error names the socket file in the first default directory there is
    const port = await freePort();
    const r = await runCli(['sessions', '-p', String(port), ...as]);
    expect(r.code, r.stderr).toBe(2);
    const { host, searched } = defaultSocketHost(port);
    const [error, hint, ...rest] = r.stderr.trimEnd().split('\n');
    expect(rest).toEqual([]);
    expect(error).toBe(
      `pgrevoke: error: connection to server on socket "${socketFile(host, port)}" failed: No such file or directory [SQLSTATE 08001]`,
    );
    expect(hint).toContain('hint: Is the server running locally and accepting connections on that socket? No host was given');
    expect(hint).toContain(`looked for .s.PGSQL.${port} in ${searched.join(', ')}`);
    expect(searched).toContain('/tmp');
    expect(r.stderr).not.toMatch(/localhost|TCP\/IP/);
  });
});
