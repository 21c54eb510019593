// The pure parts of `sessions` and `kill`: option parsing, the filter -> SQL builder, exit codes, audit lines.
import { describe, expect, it } from 'vitest';
import { killResult, killTarget } from '../fixtures/kill.js';
import { ExitCode } from '../../src/errors.js';
import {
  buildSessionsQuery,
  clientMatches,
  filtersFromOptions,
  NO_FILTERS,
  parseClient,
  parseDuration,
  parseSort,
  parseState,
  parseWatch,
  SORT_KEYS,
} from '../../src/sessions/filters.js';
import { killAuditEntries, killDoc, killExitCode, parseNodePids, permissionMessage, refuseNonClient } from '../../src/sessions/kill.js';
import { usage } from '../helpers/errors.js';

describe('parseDuration', () => {
  it.each([
    ['30s', 30],
    ['5m', 300],
    ['1h', 3600],
    ['2d', 172800],
    ['250ms', 0.25],
    ['1h30m', 5400],
    ['1.5s', 1.5],
    ['45', 45],
    [' 10s ', 10],
    ['0s', 0],
  ])('%s -> %d s', (text, s) => expect(parseDuration(text)).toBe(s));

  it.each(['', 's', '5x', '-5s', '5 s', '1h 30m', 'abc', '5m3', 'ms'])('rejects %j', (text) => {
    expect(usage(() => parseDuration(text, '--idle-longer-than')).message).toContain('--idle-longer-than');
  });
});

describe('parseSort', () => {
  it('defaults to started and accepts every documented key', () => {
    expect(parseSort(undefined)).toBe('started');
    for (const k of SORT_KEYS) expect(parseSort(k)).toBe(k);
    expect([...SORT_KEYS]).toEqual(['pid', 'user', 'database', 'started', 'idle', 'xact_age']);
  });
  it.each(['PID', 'usename', 'started; DROP TABLE x', '', 'xact-age'])('rejects %j naming the valid keys', (k) => {
    expect(usage(() => parseSort(k)).hint).toContain('xact_age');
  });
});

describe('parseState / parseClient / parseWatch', () => {
  it('accepts the pg_stat_activity states only', () => {
    expect(parseState('idle in transaction')).toBe('idle in transaction');
    usage(() => parseState('Idle'));
    usage(() => parseState('idle_in_transaction'));
  });
  it('normalises addresses and CIDR ranges, rejects the rest', () => {
    expect(parseClient('127.0.0.1')).toBe('127.0.0.1/32');
    expect(parseClient('10.0.0.0/8')).toBe('10.0.0.0/8');
    expect(parseClient('::1')).toBe('::1/128');
    expect(parseClient('fd00::/8')).toBe('fd00::/8');
    for (const bad of ['localhost', '10/8', '127.1', '1.2.3.4/33', "1.2.3.4'--", '', 'fe80::1%eth0', '::1/129', '10.0.0.0/x'])
      expect(usage(() => parseClient(bad)).message).toContain('--client');
  });
  it('matches client addresses like inet <<=', () => {
    expect(clientMatches('127.0.0.1', ['127.0.0.0/8'])).toBe(true);
    expect(clientMatches('10.1.2.3', ['127.0.0.0/8'])).toBe(false);
    // one host in either form of IPv4 (src/util/address.ts)
    expect(clientMatches('::ffff:127.0.0.1', ['127.0.0.0/8'])).toBe(true);
    expect(clientMatches('127.0.0.1', ['::ffff:127.0.0.0/104'])).toBe(true);
    expect(clientMatches('::ffff:10.0.0.1', ['127.0.0.0/8'])).toBe(false);
    expect(clientMatches('::1', ['127.0.0.0/8', '::ffff:0:0/96'])).toBe(false);
    expect(clientMatches(null, ['127.0.0.0/8'])).toBe(false);
    expect(clientMatches(null, [])).toBe(true);
  });
  it('--watch: 2 s alone, a number or a duration, bounded', () => {
    expect(parseWatch(undefined)).toBeNull();
    expect(parseWatch(true)).toBe(2);
    expect(parseWatch('5')).toBe(5);
    expect(parseWatch('500ms')).toBe(0.5);
    usage(() => parseWatch('0'));
    usage(() => parseWatch('2h'));
    usage(() => parseWatch('fast'));
  });
});

describe('buildSessionsQuery', () => {
  it('without filters: client backends and walsenders, not our own connection, by start time', () => {
    const q = buildSessionsQuery(NO_FILTERS);
    expect(q.values).toEqual([]);
    expect(q.text).toContain('FROM pg_stat_activity a');
    expect(q.text).toContain('a.pid <> pg_backend_pid()');
    expect(q.text).toContain(`a.backend_type IN ('client backend', 'walsender')`);
    expect(q.text).toMatch(/ORDER BY a\.backend_start NULLS LAST, a\.pid$/);
    expect(q.text).not.toMatch(/\$\d/);
  });

  it('--all drops the backend type condition but still excludes our own connection', () => {
    const q = buildSessionsQuery({ ...NO_FILTERS, all: true });
    expect(q.text).not.toContain('backend_type IN');
    expect(q.text).toContain('a.pid <> pg_backend_pid()');
  });

  it('every filter is one parameter, numbered in order, never spliced into the text', () => {
    const hostile = `x'); DROP ROLE postgres; --`;
    const q = buildSessionsQuery({
      ...NO_FILTERS,
      users: ['app', hostile],
      databases: ['db1'],
      states: ['idle', 'idle in transaction'],
      applications: ['psql'],
      clients: ['127.0.0.1/32', '::1/128'],
      idleLongerThanS: 30,
      sort: 'pid',
    });
    expect(q.values).toEqual([
      ['app', hostile],
      ['db1'],
      ['idle', 'idle in transaction'],
      ['psql'],
      ['127.0.0.1/32', '::ffff:7f00:1/128', '::1/128'],
      30,
    ]);
    expect(q.text).toContain('a.usename::text = ANY($1::text[])');
    expect(q.text).toContain('a.datname::text = ANY($2::text[])');
    expect(q.text).toContain('a.state = ANY($3::text[])');
    expect(q.text).toContain('a.application_name = ANY($4::text[])');
    expect(q.text).toContain('a.client_addr <<= ANY($5::inet[])');
    expect(q.text).toContain(
      `a.state IN ('idle', 'idle in transaction', 'idle in transaction (aborted)') AND a.state_change < clock_timestamp() - $6::float8 * interval '1 second'`,
    );
    expect(q.text).not.toContain('DROP ROLE');
    expect(q.text).not.toContain("'app'");
    expect(q.text).toMatch(/ORDER BY a\.pid$/);
  });

  it('numbers parameters densely when only some filters are set', () => {
    const q = buildSessionsQuery({ ...NO_FILTERS, applications: ['a'], idleLongerThanS: 1.5 });
    expect(q.values).toEqual([['a'], 1.5]);
    expect(q.text).toContain('ANY($1::text[])');
    expect(q.text).toContain('$2::float8');
    expect(q.text).not.toContain('$3');
  });

  it.each([
    ['pid', 'a.pid'],
    ['user', 'a.usename NULLS LAST, a.pid'],
    ['database', 'a.datname NULLS LAST, a.pid'],
    ['started', 'a.backend_start NULLS LAST, a.pid'],
    ['idle', 'idle_seconds DESC NULLS LAST, a.pid'],
    ['xact_age', 'a.xact_start NULLS LAST, a.pid'],
  ] as const)('sort %s -> ORDER BY %s', (sort, order) => {
    expect(buildSessionsQuery({ ...NO_FILTERS, sort }).text.endsWith(`ORDER BY ${order}`)).toBe(true);
  });

  it('computes idle time only for idle states, and the transaction age', () => {
    const q = buildSessionsQuery(NO_FILTERS);
    expect(q.text).toContain(
      `CASE WHEN a.state IN ('idle', 'idle in transaction', 'idle in transaction (aborted)') THEN GREATEST(0, EXTRACT(epoch FROM clock_timestamp() - a.state_change))::float8 END AS idle_seconds`,
    );
    expect(q.text).toContain(
      'CASE WHEN a.xact_start IS NOT NULL THEN GREATEST(0, EXTRACT(epoch FROM clock_timestamp() - a.xact_start))::float8 END AS xact_seconds',
    );
  });
});

describe('filtersFromOptions', () => {
  it('maps commander options, validating each', () => {
    expect(
      filtersFromOptions({ user: ['App'], client: ['127.0.0.1'], state: ['idle'], idleLongerThan: '5m', sort: 'idle', all: true }),
    ).toEqual({
      users: ['App'],
      databases: [],
      states: ['idle'],
      applications: [],
      clients: ['127.0.0.1/32'],
      idleLongerThanS: 300,
      all: true,
      sort: 'idle',
    });
    expect(filtersFromOptions({})).toEqual(NO_FILTERS);
    usage(() => filtersFromOptions({ sort: 'nope' }));
    usage(() => filtersFromOptions({ idleLongerThan: 'soon' }));
  });
});

const target = killTarget;
const result = killResult;

describe('kill: pids, refusals, messages, exit codes', () => {
  it('takes plain positive integers, once each, in order (one node)', () => {
    const pids = (args: string[]) => parseNodePids(args, ['db:5432']).map((r) => r.pid);
    expect(pids(['12', '7', '12', ' 9 '])).toEqual([12, 7, 9]);
    expect(usage(() => pids(['1a'])).message).toContain('invalid pid');
    usage(() => pids(['0']));
    usage(() => pids(['-3']));
    usage(() => pids(['2147483648']));
    usage(() => pids([]));
  });

  it('refuses NODE:PID naming a node it is not connected to', () => {
    expect(usage(() => parseNodePids(['12', 'primary:42'], ['db:5432'])).message).toContain('unknown node "primary"');
  });

  it('refuses non-client backends unless forced; client backends, walsenders, hidden and unseen types pass', () => {
    const ok = [
      target({ pid: 1 }),
      target({ pid: 2, backendType: 'walsender' }),
      target({ pid: 3, hidden: true, user: null, backendType: 'client backend' }),
      target({ pid: 4, backendType: null }),
      target({ pid: 5, found: false, backendType: null }),
    ];
    expect(refuseNonClient(ok, false)).toBeNull();
    const bad = [...ok, target({ pid: 9, backendType: 'checkpointer', user: null, userOid: null })];
    const e = refuseNonClient(bad, false)!;
    expect(e.exitCode).toBe(ExitCode.USAGE);
    expect(e.message).toContain('pid 9 (checkpointer)');
    expect(e.message).not.toContain('pid 1 ');
    expect(e.hint).toContain('--force');
    expect(refuseNonClient(bad, true)).toBeNull();
  });

  it('names what is needed when permission is missing', () => {
    expect(permissionMessage(target({}), 'terminate')).toMatch(/superuser.*"bob".*member of it.*pg_signal_backend/);
    expect(permissionMessage(target({ user: 'postgres', userSuperuser: true }), 'cancel')).toContain(
      "only a superuser may signal a superuser's backend",
    );
    expect(permissionMessage(target({ hidden: true, user: null, userOid: null }), 'terminate')).toContain('only a superuser');
  });

  it('maps results to one exit code', () => {
    expect(killExitCode([result({})])).toBe(ExitCode.OK);
    expect(killExitCode([result({}), result({ status: 'not_found', ok: false, at: null })])).toBe(ExitCode.EXPOSED);
    expect(killExitCode([result({ status: 'gone', ok: false })])).toBe(ExitCode.EXPOSED);
    expect(killExitCode([result({ status: 'denied', ok: false })])).toBe(ExitCode.USAGE);
    expect(killExitCode([result({ status: 'denied', ok: false }), result({ status: 'not_found', ok: false })])).toBe(ExitCode.USAGE);
    expect(killExitCode([result({ status: 'denied', ok: false }), result({})])).toBe(ExitCode.PARTIAL);
    expect(killExitCode([result({ status: 'failed', ok: false })])).toBe(ExitCode.PARTIAL);
    // a node that could not be reached: partial when something was signalled elsewhere, else 2
    expect(killExitCode([result({ status: 'unreachable', ok: false, at: null })])).toBe(ExitCode.USAGE);
    expect(killExitCode([result({ status: 'unreachable', ok: false, at: null }), result({ status: 'not_found', ok: false })])).toBe(
      ExitCode.USAGE,
    );
    expect(killExitCode([result({ status: 'unreachable', ok: false, at: null }), result({})])).toBe(ExitCode.PARTIAL);
  });

  it('JSON: schemaVersion 1, one result per pid with its node, error only on failures', () => {
    const doc = killDoc([
      result({}),
      result({ pid: 5, found: false, ok: false, status: 'not_found', error: 'session not found: pid 5', at: null }),
    ]);
    expect(doc).toEqual({
      schemaVersion: 1,
      results: [
        { node: 'db:5432', pid: 100, found: true, hidden: false, action: 'terminate', ok: true, user: 'bob', database: 'app' },
        {
          node: 'db:5432',
          pid: 5,
          found: false,
          hidden: false,
          action: 'terminate',
          ok: false,
          user: 'bob',
          database: 'app',
          error: 'session not found: pid 5',
        },
      ],
    });
  });

  it('audit: one admin_kill line per pid signalled, none for missing pids', () => {
    const entries = killAuditEntries(
      [
        result({}),
        result({ pid: 5, found: false, ok: false, status: 'not_found', at: null }),
        result({
          pid: 6,
          ok: false,
          status: 'denied',
          error: 'permission denied',
          serverMessage: 'permission denied to terminate process',
        }),
      ],
      [target({}), target({ pid: 6, clientAddr: null, clientPort: -1 })],
      { operator: { dbUser: 'ops', osUser: 'alice', host: 'laptop' }, note: 'ticket 42' },
    );
    expect(entries).toHaveLength(2);
    expect(entries[0]).toEqual({
      time: '2024-01-01T00:00:00.000Z',
      node: 'db:5432',
      operator: { dbUser: 'ops', osUser: 'alice', host: 'laptop' },
      target: 'bob',
      action: 'terminate',
      reason: 'admin_kill',
      result: 'done',
      detail: null,
      note: 'ticket 42',
      session: { pid: 100, user: 'bob', database: 'app', client: '10.0.0.5:51000', application: 'psql', query: 'SELECT 1' },
    });
    expect(entries[1]).toMatchObject({ result: 'failed', session: { pid: 6, client: 'local' } });
    expect(entries[1]!.detail).toContain('permission denied');
  });
});
