import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeConn, parseKeywordValue, resolveConnParams } from '../../src/pg/conninfo.js';
import { ident, literal } from '../../src/pg/quote.js';
import { redact, registerGenerated } from '../../src/pg/redact.js';
import { PgrevokeError } from '../../src/errors.js';
import { usage } from '../helpers/errors.js';

describe('connection parameters, psql rules', () => {
  it('parses key=value strings with quoting and escapes', () => {
    expect(parseKeywordValue(`host=db.example port=6432 user='o\\'k' dbname='my db' password=s\\ cret`)).toEqual({
      host: 'db.example',
      port: '6432',
      user: "o'k",
      dbname: 'my db',
      password: 's cret',
    });
  });

  it('rejects unknown keywords without echoing the password', () => {
    expect(() => parseKeywordValue('host=a nope=1 password=zzz')).toThrow(/invalid connection option "nope"/);
    // a quoted password ends at its quote: what follows may be quoted
    expect(usage(() => parseKeywordValue("password='two words' nope=1")).message).toBe('invalid connection option "nope"');
  });

  it('quotes nothing after an unquoted password: with spaces, the rest is the password', () => {
    for (const dsn of ['host=h password=correct horse battery', 'password=correct horse=battery', "password=a 'b", 'password=a b=1 c'])
      for (const text of [usage(() => parseKeywordValue(dsn)).message, usage(() => parseKeywordValue(dsn)).hint ?? '']) {
        expect(text, dsn).not.toMatch(/horse|battery|'b|b=1|\bc\b/);
        expect(text, dsn).not.toContain('correct');
      }
    expect(usage(() => parseKeywordValue('host=h password=correct horse')).message).toBe(
      'could not parse the connection string after an unquoted password (not shown)',
    );
    expect(usage(() => parseKeywordValue('host=h password=correct horse')).hint).toContain("password='two words'");
    // the text it stopped at is quoted when no password can be in it
    expect(usage(() => parseKeywordValue("host=h 'junk")).message).toBe('could not parse the connection string near "\'junk"');
    expect(usage(() => parseKeywordValue("host=h 'password=x")).message).not.toContain('x"');
  });

  it('flags beat the DSN, the DSN beats the environment', () => {
    const env = { PGHOST: 'envhost', PGPORT: '7000', PGUSER: 'envuser', PGDATABASE: 'envdb', PGPASSWORD: 'envpw' };
    const p = resolveConnParams({ dsn: 'postgresql://dsnuser:dsnpw@dsnhost:6000/dsndb', port: '5999' }, env);
    expect(p).toMatchObject({ host: 'dsnhost', port: 5999, user: 'dsnuser', database: 'dsndb', password: 'dsnpw' });
    const q = resolveConnParams({}, env);
    expect(q).toMatchObject({ host: 'envhost', port: 7000, user: 'envuser', database: 'envdb', password: 'envpw' });
  });

  it('DATABASE_URL is used when no --dsn is given', () => {
    expect(resolveConnParams({}, { DATABASE_URL: 'postgres://u@h:1234/d' })).toMatchObject({
      host: 'h',
      port: 1234,
      user: 'u',
      database: 'd',
    });
  });

  it('a service entry fills in below the DSN and above the environment', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'svc-'));
    const file = path.join(dir, 'pg_service.conf');
    writeFileSync(file, '[prod]\nhost=svc-host\nport=6543\ndbname=svcdb\nuser=svcuser\n');
    const p = resolveConnParams({}, { PGSERVICE: 'prod', PGSERVICEFILE: file, PGHOST: 'ignored', PGUSER: 'ignored' });
    expect(p).toMatchObject({ host: 'svc-host', port: 6543, database: 'svcdb', user: 'svcuser' });
    expect(() => resolveConnParams({}, { PGSERVICE: 'nope', PGSERVICEFILE: file, PGSYSCONFDIR: dir })).toThrow(/service "nope" not found/);
  });

  it('a bad port or timeout is a usage error naming where it was given and the range', () => {
    const message = (flags: Parameters<typeof resolveConnParams>[0], env: NodeJS.ProcessEnv = {}) =>
      usage(() => resolveConnParams(flags, env)).message;
    expect(() => resolveConnParams({ port: 'abc' }, {})).toThrow(PgrevokeError);
    expect(message({ port: '0x10' })).toBe('invalid --port: "0x10": an integer from 1 to 65535');
    expect(message({}, { PGPORT: '' })).toBe('invalid PGPORT: "": an integer from 1 to 65535');
    expect(message({ dsn: 'host=h port=70000' })).toBe('invalid port in the connection string: "70000": an integer from 1 to 65535');
    expect(message({ dsn: 'postgresql://u:pw@h:0/d' })).toBe('invalid port in the connection string: "0": an integer from 1 to 65535');
    // seconds that Node's timer (at most 2^31-1 ms) can hold: 2147484 s would fire after 1 ms
    const range = 'an integer from 0 to 2147483 (seconds)';
    expect(message({ connectTimeout: '2147484' })).toBe(`invalid --connect-timeout: "2147484": ${range}`);
    expect(message({}, { PGCONNECT_TIMEOUT: '2147484' })).toBe(`invalid PGCONNECT_TIMEOUT: "2147484": ${range}`);
    expect(message({ dsn: 'host=h connect_timeout=1e3' })).toBe(`invalid connect_timeout in the connection string: "1e3": ${range}`);
    for (const bad of ['', '-1', '1.5', '0x10', '1e3', 'ten', '5 s', 'Infinity'])
      expect(message({ connectTimeout: bad }), bad).toMatch(/^invalid --connect-timeout: /);
    expect(resolveConnParams({ connectTimeout: '2147483' }, {}).connectTimeout).toBe(2147483);
    expect(resolveConnParams({ connectTimeout: ' 0 ' }, {}).connectTimeout).toBe(0);
    expect(resolveConnParams({}, {}).connectTimeout).toBe(10);
    // the flag is checked even where a valid value sits below it
    expect(message({ connectTimeout: '' }, { PGCONNECT_TIMEOUT: '5' })).toMatch(/^invalid --connect-timeout: ""/);
  });

  it('describes a connection without its password', () => {
    const p = resolveConnParams({ dsn: 'postgresql://u:pw@h:1/d' }, {});
    expect(describeConn(p)).toBe('u@h:1/d');
  });
});

describe('quoting and redaction', () => {
  it('quotes identifiers exactly, never folding case', () => {
    expect(ident('UPPER')).toBe('"UPPER"');
    expect(ident('a"b')).toBe('"a""b"');
    expect(ident(`Robert'); DROP TABLE x;--`)).toBe(`"Robert'); DROP TABLE x;--"`);
    expect(ident('Ünï 𝔐')).toBe('"Ünï 𝔐"');
  });

  it('quotes literals, using E-strings for backslashes', () => {
    expect(literal("it's")).toBe(`'it''s'`);
    expect(literal('a\\b')).toBe(`E'a\\\\b'`);
  });

  it("masks a message's conninfo passwords and generated secrets, not the operator's password as text", () => {
    const generated = 'g3nerated-0123456789-abcdefghijklmn';
    registerGenerated(generated);
    expect(redact('postgresql://u:hunter2@h/d')).toBe('postgresql://u:*****@h/d');
    expect(redact("host=h password='a b' user=u")).toBe('host=h password=***** user=u');
    expect(redact(`oops ${generated} leaked`)).toBe('oops ***** leaked');
    // a password given to connect is not searched for: 'a' or 'postgres' would garble every message
    resolveConnParams({ dsn: 'postgresql://u:a@h/postgres' }, {});
    expect(redact('role "alice" in database "postgres"')).toBe('role "alice" in database "postgres"');
    // only generated secrets, long enough that a match is never a coincidence, are taken
    expect(() => registerGenerated('short')).toThrow(/at least 32/);
  });
});
