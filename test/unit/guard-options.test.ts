// pgrevoke guard's flags: NAME=SECONDS at the last '=', durations, intervals, the deny file, targets.
import { describe, expect, it } from 'vitest';
import { guardConfig, guardNodes } from '../../src/commands/guard.js';
import { PgrevokeError } from '../../src/errors.js';
import {
  DEFAULT_INTERVAL_MS,
  parseDenyFile,
  parseInterval,
  parseMaxBlind,
  parseNameSeconds,
  parseRoleNames,
  parseTimeouts,
} from '../../src/guard/options.js';
import { usage } from '../helpers/errors.js';

describe('parseNameSeconds', () => {
  it('splits at the last =, so names may contain =', () => {
    expect(parseNameSeconds('app=30', '--idle-timeout')).toEqual(['app', 30]);
    expect(parseNameSeconds('a=b=5m', '--idle-timeout')).toEqual(['a=b', 300]);
    expect(parseNameSeconds('==1', '--idle-timeout')).toEqual(['=', 1]);
    expect(parseNameSeconds('Weird "Role"=1h30m', '--idle-timeout-role')).toEqual(['Weird "Role"', 5400]);
  });

  it('takes the duration syntax of pgrevoke sessions; 0 means no limit', () => {
    expect(parseNameSeconds('db=500ms', '--idle-timeout')[1]).toBe(0.5);
    expect(parseNameSeconds('db=2d', '--idle-timeout')[1]).toBe(172800);
    expect(parseNameSeconds('db=0', '--idle-timeout')[1]).toBe(0);
    expect(parseNameSeconds('db=1.5', '--idle-timeout')[1]).toBe(1.5);
  });

  it('refuses what is not NAME=SECONDS, with a usage error (exit 2)', () => {
    for (const bad of ['db', '=30', 'db=', 'db=soon', 'db=-1', 'db=5 m'])
      expect(() => parseNameSeconds(bad, '--idle-timeout'), bad).toThrow(PgrevokeError);
    try {
      parseNameSeconds('app', '--idle-timeout-role');
    } catch (e) {
      expect((e as PgrevokeError).exitCode).toBe(2);
      expect((e as PgrevokeError).hint).toContain('ROLE=SECONDS');
    }
  });

  it('a later entry for the same exact name replaces the earlier one; case matters', () => {
    const m = parseTimeouts(['app=1', 'App=2', 'app=3'], '--idle-timeout');
    expect([...m]).toEqual([
      ['app', 3],
      ['App', 2],
    ]);
  });
});

describe('parseInterval', () => {
  it('defaults to 125 ms and takes integers from 10 to 60000', () => {
    expect(DEFAULT_INTERVAL_MS).toBe(125);
    expect(parseInterval(undefined)).toBe(125);
    expect(parseInterval('200')).toBe(200);
    for (const bad of ['0', '9', '60001', '1.5', 'fast', '-5', '', '0x10', '1e2'])
      expect(() => parseInterval(bad), bad).toThrow(/invalid --interval/);
  });
});

describe('ranges of --max-blind and NAME=SECONDS', () => {
  it('--max-blind: 0 (never) to a day, in ms', () => {
    expect(parseMaxBlind(undefined)).toBe(30_000);
    expect(parseMaxBlind('0')).toBe(0);
    expect(parseMaxBlind('1d')).toBe(86_400_000);
    for (const bad of ['86401', '2d', '', '1e3']) expect(usage(() => parseMaxBlind(bad)).message, bad).toMatch(/^invalid --max-blind: /);
  });

  it('NAME=SECONDS: up to 365 days', () => {
    expect(parseNameSeconds('db=365d', '--idle-timeout')[1]).toBe(31_536_000);
    for (const bad of ['db=366d', 'db=1e9', 'db=0x10'])
      expect(usage(() => parseNameSeconds(bad, '--idle-timeout')).message, bad).toMatch(/^invalid --idle-timeout: /);
  });
});

describe('role names and the deny file', () => {
  it('keeps exact names, deduplicated, refuses empty ones', () => {
    expect(parseRoleNames(['UPPER', 'upper', 'UPPER'], '--deny')).toEqual(['UPPER', 'upper']);
    expect(() => parseRoleNames([''], '--deny')).toThrow(/empty role name/);
  });

  it('reads one name per line, skipping blanks and # comments', () => {
    expect(parseDenyFile('# denied\nmallory\r\n\n  eve  \n#bob\nMallory\nmallory\n', 'deny file d')).toEqual(['mallory', 'eve', 'Mallory']);
    expect(parseDenyFile('', 'deny file d')).toEqual([]);
  });

  it('refuses --deny, --exclude-role and ROLE=SECONDS names PostgreSQL would cut or cannot take', () => {
    expect(usage(() => parseRoleNames(['ok', 'x'.repeat(64)], '--deny')).message).toMatch(
      /^--deny: role name "x{64}" refused: it is 64 bytes long/,
    );
    expect(usage(() => parseRoleNames(['a\0b'], '--exclude-role')).message).toContain('NUL byte');
    expect(usage(() => parseTimeouts([`${'é'.repeat(32)}=5s`], '--idle-timeout-role')).message).toContain('64 bytes long');
    // a database name is not a role name: only the -role flags check it
    expect(parseTimeouts([`${'d'.repeat(70)}=5s`], '--idle-timeout').size).toBe(1);
    expect(parseRoleNames(['x'.repeat(63)], '--deny')).toEqual(['x'.repeat(63)]);
  });
});

describe('targets and config', () => {
  it('defaults to the connection options; node names are host:port; the guard names its backend', async () => {
    const [n] = await guardNodes({}, { dsn: 'postgresql://u@db1:6543/x' });
    expect(n!.name).toBe('db1:6543');
    expect(n!.params.applicationName).toBe('pgrevoke-guard');
    const [m] = await guardNodes({}, { dsn: 'postgresql://u@db1:6543/x?application_name=mine' });
    expect(m!.params.applicationName).toBe('mine');
  });

  it('--target repeats, one node each; user and database flags apply to every target', async () => {
    const nodes = await guardNodes({ target: ['host=a port=5432', 'postgresql://b:5433/app'] }, { username: 'guard' });
    expect(nodes.map((n) => n.name)).toEqual(['a:5432', 'b:5433']);
    expect(nodes.map((n) => n.params.user)).toEqual(['guard', 'guard']);
    expect(nodes[1]!.params.database).toBe('app');
  });

  it('refuses --target with --dsn/--host/--port, and the same node twice', async () => {
    await expect(guardNodes({ target: ['host=a'] }, { host: 'b' })).rejects.toThrow(/does not combine/);
    await expect(guardNodes({ target: ['host=a port=1', 'postgresql://a:1/other'] }, {})).rejects.toThrow(/named twice/);
  });

  it('builds the whole config from flags', async () => {
    const cfg = await guardConfig(
      {
        deny: ['m'],
        excludeRole: ['ops'],
        idleTimeout: ['app=5m'],
        idleTimeoutRole: ['etl=0'],
        idleInTransactionTimeout: ['app=30s'],
        idleInTransactionTimeoutRole: ['report=1m'],
        interval: '100',
        dryRun: true,
        auditLog: '/tmp/a.log',
      },
      { dsn: 'postgresql://u@h:5432/d' },
    );
    expect(cfg).toMatchObject({ deny: ['m'], exclude: ['ops'], intervalMs: 100, dryRun: true, auditLog: '/tmp/a.log', denyFile: null });
    expect([...cfg.idle.databases]).toEqual([['app', 300]]);
    expect([...cfg.idle.roles]).toEqual([['etl', 0]]);
    expect([...cfg.idleInTransaction.databases]).toEqual([['app', 30]]);
    expect([...cfg.idleInTransaction.roles]).toEqual([['report', 60]]);
  });
});
