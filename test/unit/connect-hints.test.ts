// Hints that know the operator's situation: root without a role "root"; no password and no terminal.
import { describe, expect, it } from 'vitest';
import { PgrevokeError } from '../../src/errors.js';
import { rootHint, toOperatorError } from '../../src/pg/connect.js';
import { resolveConnParams } from '../../src/pg/conninfo.js';
import { askPassword, setPasswordPrompting } from '../../src/pg/password-prompt.js';

const params = (user: string) => resolveConnParams({ host: '/s', port: '5432', username: user, dbname: 'postgres' }, {});

describe('as root with no role "root"', () => {
  it('suggests the server OS user or -U, only for root logging in as "root"', () => {
    const missing = 'role "root" does not exist';
    expect(rootHint({ user: 'root' }, missing, 0)).toContain('sudo -u postgres pgrevoke ...');
    expect(rootHint({ user: 'root' }, missing, 0)).toContain('-U postgres');
    expect(rootHint({ user: 'root' }, missing, 1000)).toBeUndefined();
    expect(rootHint({ user: 'postgres' }, 'password authentication failed for user "postgres"', 0)).toBeUndefined();
  });

  it('peer authentication refusing root as another role: run as that OS user', () => {
    const peer = 'Peer authentication failed for user "postgres"';
    expect(rootHint({ user: 'postgres' }, peer, 0)).toBe(
      "peer authentication admits the OS user of the role's name (pg_ident.conf aside), and this is root: run it as that user (sudo -u postgres pgrevoke ...)",
    );
    expect(rootHint({ user: 'postgres' }, peer, 1000)).toBeUndefined();
  });

  it('replaces the generic hint of a refused login (28000, 28P01) when this process is root', () => {
    const refused = Object.assign(new Error('role "root" does not exist'), { code: '28000' });
    const e = toOperatorError(refused, params('root'));
    expect(e.message).toBe('role "root" does not exist (root@socket /s:5432/postgres)');
    const peer = toOperatorError(Object.assign(new Error('Peer authentication failed for user "root"'), { code: '28000' }), params('root'));
    const other = toOperatorError(refused, params('alice'));
    expect(other.hint).toBe('pg_hba.conf or the role itself refuses this login');
    const generic = 'pg_hba.conf or the role itself refuses this login';
    const root = process.getuid?.() === 0;
    expect(e.hint).toBe(root ? rootHint({ user: 'root' }, '', 0) : generic);
    expect(peer.hint).toBe(root ? rootHint({ user: 'root' }, '', 0) : generic);
  });
});

describe('no password supplied, and pgrevoke may not ask', () => {
  const noPassword = async (mode: Parameters<typeof setPasswordPrompting>[0]) => {
    setPasswordPrompting(mode);
    const err = await askPassword(params('alice')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgrevokeError);
    return err as PgrevokeError;
  };

  it('an empty password is none (as for libpq): pgpass, then the terminal, may still supply one', () => {
    expect(resolveConnParams({ host: 'h' }, { PGPASSWORD: '' }).password).toBeUndefined();
    expect(resolveConnParams({ dsn: "host=h password=''" }, {}).password).toBeUndefined();
    expect(resolveConnParams({ host: 'h' }, { PGPASSWORD: 'x' }).password).toBe('x');
  });

  it('-w: one line, exit 2, a hint away from PGPASSWORD', async () => {
    const e = await noPassword('never');
    expect(e.message).toBe(
      'could not connect to alice@socket /s:5432/postgres: the server asked for a password and none was supplied (-w/--no-password: never asked)',
    );
    expect(e.exitCode).toBe(2);
    expect(e.hint).toContain('~/.pgpass');
    expect(e.hint).toContain('service file');
    expect(e.hint).toContain('not PGPASSWORD');
    expect(e.hint).not.toContain('-W');
  });
});
