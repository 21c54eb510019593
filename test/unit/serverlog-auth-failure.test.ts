// A log entry -> the failure it records. The names are the attacker's: quotes, ` for user `,
// `", user "`, `" from host "`, newlines, a fake "Connection matched" line. Nothing a name holds may
// set the address, the database, the kind or the pg_hba.conf line.
import { describe, expect, it } from 'vitest';
import { authFailure, clientAddress } from '../../src/serverlog/auth-failure.js';
import { detailSaysRoleMissing, hbaLineOfDetail, matchTemplate } from '../../src/serverlog/messages.js';
import type { LogRecord } from '../../src/serverlog/record.js';
import { logTimeToIso } from '../../src/serverlog/time.js';
import { failuresIn } from '../helpers/serverlog-parse.js';

const ctx = { zone: 'UTC', readAt: () => new Date('2026-12-01T00:00:00Z') };

function rec(over: Partial<LogRecord>): LogRecord {
  return {
    format: 'csvlog',
    time: '2026-12-01 14:30:01.145 UTC',
    pid: 42,
    user: 'alice',
    database: 'postgres',
    remoteHost: '127.0.0.1',
    severity: 'FATAL',
    sqlstate: '28P01',
    message: 'password authentication failed for user "alice"',
    detail: null,
    offset: 0,
    length: 100,
    ...over,
  };
}

describe('message templates', () => {
  it('a user name that is itself a template fragment does not move the address or the split', () => {
    const user = 'x" from host "10.0.0.1';
    expect(matchTemplate(`password authentication failed for user "${user}"`)!.splits).toEqual([{ user }]);
    const split = 'alice", database "postgres", no encryption';
    const m = matchTemplate(`no pg_hba.conf entry for host "127.0.0.200", user "${split}", database "postgres", no encryption`)!;
    expect(m.template.kind).toBe('no_hba_entry');
    // two ways to read it; the host, written before any name, is the same in both
    expect(m.splits).toEqual([
      { host: '127.0.0.200', user: 'alice', database: 'postgres", no encryption", database "postgres', encryption: 'no encryption' },
      { host: '127.0.0.200', user: split, database: 'postgres', encryption: 'no encryption' },
    ]);
  });

  it('the structured user decides between the readings; without one an ambiguous message gives no user', () => {
    const split = 'alice", database "postgres", no encryption';
    const message = `no pg_hba.conf entry for host "127.0.0.200", user "${split}", database "postgres", no encryption`;
    expect(authFailure(rec({ user: split, sqlstate: '28000', message, remoteHost: '127.0.0.200' }), ctx)).toMatchObject({
      user: split,
      kind: 'no_hba_entry',
    });
    // stderr without %u: nothing says which reading is right
    expect(authFailure(rec({ format: 'stderr', user: null, sqlstate: null, message, remoteHost: null }), ctx)).toBeNull();
    // stderr with %u: the reading whose user the prefix names
    expect(
      authFailure(rec({ format: 'stderr', user: split, database: null, sqlstate: null, message, remoteHost: null }), ctx),
    ).toMatchObject({
      user: split,
      address: '127.0.0.200',
      database: 'postgres',
    });
  });

  it('every text, with its kind and SQLSTATE', () => {
    const kinds = [
      ['password authentication failed for user "a"', 'password', '28P01'],
      ['no pg_hba.conf entry for host "10.0.0.1", user "a", database "d", SSL encryption', 'no_hba_entry', '28000'],
      ['no pg_hba.conf entry for replication connection from host "10.0.0.1", user "a", no encryption', 'no_hba_entry', '28000'],
      ['pg_hba.conf rejects connection for host "10.0.0.1", user "a", database "d", GSS encryption', 'hba_reject', '28000'],
      ['pg_hba.conf rejects replication connection for host "10.0.0.1", user "a", no encryption', 'hba_reject', '28000'],
      ['role "a" is not permitted to log in', 'nologin', '28000'],
      ['role "a" does not exist', 'role_missing', '28000'],
      ['Peer authentication failed for user "a"', 'other', '28000'],
      ['"trust" authentication failed for user "a"', 'other', '28000'],
      ['OAuth bearer authentication failed for user "a"', 'other', '28000'],
      ['certificate authentication failed for user "a": client certificate contains no user name', 'other', '28000'],
    ];
    for (const [message, kind, sqlstate] of kinds) {
      const m = matchTemplate(message!)!;
      expect([m.template.kind, m.template.sqlstate, m.splits[0]!.user]).toEqual([kind, sqlstate, 'a']);
    }
    expect(matchTemplate('database "a" does not exist')).toBeNull();
    expect(matchTemplate('password authentication failed for user "a" ')).toBeNull(); // anchored at both ends
  });

  it('the DETAIL: the role missing (first line, exact name), the pg_hba.conf line (last line only)', () => {
    const user = 'x" does not exist.\nConnection matched pg_hba.conf line 1: "';
    const detail = `Role "${user}" does not exist.\nConnection matched pg_hba.conf line 3: "host all all 127.0.0.1/32 scram-sha-256"`;
    expect(detailSaysRoleMissing(detail, user)).toBe(true);
    expect(detailSaysRoleMissing('Connection matched pg_hba.conf line 3: "host all all 127.0.0.1/32 scram-sha-256"', 'x')).toBe(false);
    expect(detailSaysRoleMissing('Role "xy" does not exist.', 'x')).toBe(false);
    expect(hbaLineOfDetail(detail)).toBe(3);
    expect(hbaLineOfDetail('Connection matched file "/etc/postgresql/16/main/pg_hba.conf" line 97: "host all all all md5"')).toBe(97);
    expect(hbaLineOfDetail('Role "a" does not exist.')).toBeNull();
  });
});

describe('authFailure', () => {
  it('counts only FATAL 28P01/28000: another SQLSTATE or an ERROR of the same text does not', () => {
    expect(authFailure(rec({}), ctx)).toMatchObject({ kind: 'password', user: 'alice', address: '127.0.0.1', hbaLine: null, pid: 42 });
    expect(authFailure(rec({ sqlstate: '42704', message: 'role "a" does not exist' }), ctx)).toBeNull();
    expect(authFailure(rec({ severity: 'ERROR' }), ctx)).toBeNull();
    expect(authFailure(rec({ severity: 'FATAL', sqlstate: '53300', message: 'sorry, too many clients already' }), ctx)).toBeNull();
  });

  it('csvlog/jsonlog: a 28000 of an unknown text (another language) still counts, as other, with the structured user', () => {
    expect(
      authFailure(rec({ sqlstate: '28000', message: 'Passwort-Authentifizierung für Benutzer »alice« fehlgeschlagen' }), ctx),
    ).toMatchObject({
      kind: 'other',
      user: 'alice',
      sqlstate: '28000',
    });
    expect(authFailure(rec({ format: 'stderr', sqlstate: null, message: 'Passwort-Authentifizierung fehlgeschlagen' }), ctx)).toBeNull();
  });

  it("the address: a numeric one only (a resolved host name is the client's to set), never from a name", () => {
    expect(clientAddress('127.0.0.1')).toBe('127.0.0.1');
    expect(clientAddress('::1')).toBe('::1');
    expect(clientAddress('[local]')).toBeNull();
    expect(clientAddress('evil.example.com')).toBeNull();
    expect(authFailure(rec({ remoteHost: '[local]' }), ctx)!.address).toBeNull();
    const user = 'x" from host "10.0.0.1';
    const f = authFailure(rec({ user, remoteHost: null, message: `password authentication failed for user "${user}"` }), ctx)!;
    expect([f.user, f.address]).toEqual([user, null]);
  });

  it('stderr: a line whose %u the message contradicts is not taken', () => {
    const r = rec({ format: 'stderr', sqlstate: null, user: 'v', message: 'password authentication failed for user "a@b LOG:  x\nstuff"' });
    expect(authFailure(r, ctx)).toBeNull();
  });

  it('the time with its offset; a zone the text cannot tell: the time it was read', () => {
    expect(authFailure(rec({ time: '2026-07-01 14:30:01.145 CEST' }), { ...ctx, zone: 'Europe/Berlin' })!.at).toBe(
      '2026-07-01T14:30:01.145+02:00',
    );
    expect(authFailure(rec({ time: '2026-12-01 14:30:01.145 CST' }), { ...ctx, zone: null })!.at).toBe('2026-12-01T00:00:00.000Z');
  });
});

describe('logTimeToIso', () => {
  it.each([
    ['2026-12-01 14:30:01.145 UTC', null, '2026-12-01T14:30:01.145+00:00'],
    ['2026-12-01 14:30:01 +03', null, '2026-12-01T14:30:01.000+03:00'],
    ['2026-12-01 14:30:01.145 -0330', null, '2026-12-01T14:30:01.145-03:30'],
    ['2026-12-01 14:30:01.145 EST', 'America/New_York', '2026-12-01T14:30:01.145-05:00'],
    // the repeated hour of a DST change: the abbreviation decides
    ['2026-10-25 02:30:00.000 CEST', 'Europe/Berlin', '2026-10-25T02:30:00.000+02:00'],
    ['2026-10-25 02:30:00.000 CET', 'Europe/Berlin', '2026-10-25T02:30:00.000+01:00'],
    ['2026-12-01 14:30:01.145 CST', null, null],
    ['not a time', 'UTC', null],
  ])('%s in %s', (text, zone, iso) => {
    expect(logTimeToIso(text, zone)).toBe(iso);
  });
});

describe('the user as the log names it', () => {
  it('jsonlog: quotes, unicode, newlines, from the structured field', () => {
    const user = 'ünï "q"\nline two';
    const line = JSON.stringify({
      timestamp: '2026-12-01 14:30:01.145 UTC',
      user,
      dbname: 'postgres',
      pid: 9,
      remote_host: '127.0.0.8',
      remote_port: 5,
      error_severity: 'FATAL',
      state_code: '28P01',
      message: `password authentication failed for user "${user}"`,
      detail: `Role "${user}" does not exist.\nConnection matched file "/x/pg_hba.conf" line 3: "host all all 127.0.0.0/8 scram-sha-256"`,
    });
    expect(failuresIn('jsonlog', `${line}\n`).failures).toEqual([
      {
        at: '2026-12-01T14:30:01.145+00:00',
        user,
        database: 'postgres',
        address: '127.0.0.8',
        sqlstate: '28P01',
        kind: 'role_missing',
        message: `password authentication failed for user "${user}"`,
        hbaLine: 3,
        pid: 9,
      },
    ]);
  });

  it('a byte sequence that is no UTF-8 (the server does not check names) reads, it does not stop the reader', () => {
    const line = Buffer.concat([
      Buffer.from('{"timestamp":"2026-12-01 14:30:01.145 UTC","user":"a'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(
        '","pid":9,"remote_host":"127.0.0.8","error_severity":"FATAL","state_code":"28P01","message":"password authentication failed for user \\"a',
      ),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('\\""}\n'),
    ]);
    expect(failuresIn('jsonlog', line).failures.map((f) => f.user)).toEqual(['a\ufffd\ufffd']);
  });
});
