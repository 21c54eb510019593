// libpq's default host, as pgrevoke reads it: no host means a Unix socket directory, never TCP
// localhost; a failure names the socket file (or host and port) as psql does.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { toOperatorError } from '../../src/pg/connect.js';
import { DEFAULT_SOCKET_DIRS, defaultSocketHost, resolveConnParams, socketFile } from '../../src/pg/conninfo.js';

function dirs(): { a: string; b: string; missing: string; link: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-sockdirs-'));
  const [a, b] = [path.join(root, 'a'), path.join(root, 'b')];
  mkdirSync(a);
  mkdirSync(b);
  const link = path.join(root, 'link-to-a');
  symlinkSync(a, link);
  return { a, b, missing: path.join(root, 'missing'), link };
}

const sysErr = (code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`connect ${code}`), { code, ...extra });

describe('the default host: a socket directory', () => {
  it('looks in /var/run/postgresql, /run/postgresql, then /tmp', () => {
    expect(DEFAULT_SOCKET_DIRS).toEqual(['/var/run/postgresql', '/run/postgresql', '/tmp']);
  });

  it('takes the first directory holding the socket of the port, else the first that exists', () => {
    const d = dirs();
    writeFileSync(socketFile(d.b, 5498), '');
    expect(defaultSocketHost(5498, [d.missing, d.a, d.b])).toEqual({ host: d.b, searched: [d.a, d.b] });
    // no socket for this port anywhere: the first existing directory, whose socket file the error names
    expect(defaultSocketHost(5499, [d.missing, d.a, d.b])).toEqual({ host: d.a, searched: [d.a, d.b] });
    // a link to a directory already searched (/var/run -> /run) is searched once, under its first name
    expect(defaultSocketHost(5499, [d.link, d.a, d.b]).searched).toEqual([d.link, d.b]);
    // none exists at all: the first of the list, as libpq's compiled-in directory
    expect(defaultSocketHost(5499, [d.missing])).toEqual({ host: d.missing, searched: [] });
  });

  it('no -h, PGHOST, host= or hostaddr=: the socket, not TCP localhost; an empty host is no host', () => {
    const d = dirs();
    writeFileSync(socketFile(d.b, 6001), '');
    const list = [d.a, d.b];
    expect(resolveConnParams({ port: '6001' }, {}, list)).toMatchObject({ host: d.b, port: 6001, socketSearch: [d.a, d.b] });
    expect(resolveConnParams({}, { PGHOST: '', PGPORT: '6001' }, list)).toMatchObject({ host: d.b, socketSearch: [d.a, d.b] });
    expect(resolveConnParams({ dsn: "host='' port=6002" }, {}, list)).toMatchObject({ host: d.a, port: 6002 });
    // a host given anywhere is taken as it is, and no directory was searched
    const given = resolveConnParams({ host: d.a }, { PGPORT: '6001' }, list);
    expect(given).toMatchObject({ host: d.a, port: 6001 });
    expect(given.socketSearch).toBeUndefined();
    expect(resolveConnParams({}, { PGHOST: 'db1' }, list).socketSearch).toBeUndefined();
    // -h DIR without a port: 5432
    expect(resolveConnParams({ host: '/var/run/postgresql' }, {}, list).port).toBe(5432);
  });
});

describe('could not reach the server: named as psql names it', () => {
  it('a socket: the socket file, strerror, and where pgrevoke looked when no host was given', () => {
    const d = dirs();
    const p = resolveConnParams({ port: '5498', username: 'u' }, {}, [d.a, d.b]);
    const e = toOperatorError(sysErr('ENOENT'), p);
    expect(e.message).toBe(`connection to server on socket "${d.a}/.s.PGSQL.5498" failed: No such file or directory`);
    expect(e.sqlstate).toBe('08001');
    expect(e.exitCode).toBe(2);
    expect(e.hint).toMatch(/^Is the server running locally and accepting connections on that socket\? No host was given/);
    expect(e.hint).toContain(`looked for .s.PGSQL.5498 in ${d.a}, ${d.b}`);
    // a directory given with -h: its socket file, and no word of a search
    const h = toOperatorError(sysErr('ENOENT'), resolveConnParams({ host: '/var/run/postgresql', username: 'u' }, {}));
    expect(h.message).toBe('connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: No such file or directory');
    expect(h.hint).toBe('Is the server running locally and accepting connections on that socket?');
    const refused = toOperatorError(sysErr('ECONNREFUSED'), resolveConnParams({ host: '/s', port: '7', username: 'u' }, {}));
    expect(refused.message).toBe('connection to server on socket "/s/.s.PGSQL.7" failed: Connection refused');
  });

  it('TCP: the host as given, the address tried when it differs, the port', () => {
    const p = (host: string) => resolveConnParams({ host, port: '5498', username: 'u' }, {});
    const local = toOperatorError(sysErr('ECONNREFUSED', { address: '127.0.0.1', port: 5498 }), p('localhost'));
    expect(local.message).toBe('connection to server at "localhost" (127.0.0.1), port 5498 failed: Connection refused');
    expect(local.hint).toContain('accepting TCP/IP connections');
    const ip = toOperatorError(sysErr('ECONNREFUSED', { address: '127.0.0.1', port: 5498 }), p('127.0.0.1'));
    expect(ip.message).toBe('connection to server at "127.0.0.1", port 5498 failed: Connection refused');
    const unreachable = toOperatorError(sysErr('EHOSTUNREACH', { address: '10.9.9.9' }), p('db.internal'));
    expect(unreachable.message).toBe('connection to server at "db.internal" (10.9.9.9), port 5498 failed: No route to host');
    expect(unreachable.sqlstate).toBe('08001');
  });
});
