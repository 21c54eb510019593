// pgrevoke kill across nodes: NODE:PID parsing (last ':', IPv6), ambiguity, unknown nodes, --target
// (guard's parsing and labels), results and audit lines per node.
import { describe, expect, it } from 'vitest';
import { killNodes } from '../../src/commands/kill.js';
import { ExitCode } from '../../src/errors.js';
import { renderKillResults, renderKillTargets } from '../../src/report/sessions.js';
import { Chalk } from 'chalk';
import { killResult, killTarget } from '../fixtures/kill.js';

const target = (over: Parameters<typeof killTarget>[0]) => killTarget(over, A, true);
const result = (over: Parameters<typeof killResult>[0]) => killResult(over, A, true);
import { killAuditEntries, killDoc, killExitCode, parseNodePids, pidRef, unreachableResults } from '../../src/sessions/kill.js';
import { usage } from '../helpers/errors.js';

const A = '10.0.0.1:5432';
const B = '10.0.0.2:5433';
const V6 = '::1:5432';
const SOCK = '/var/run/postgresql:5432';

describe('parseNodePids', () => {
  it('splits NODE:PID at the LAST colon, so host:port labels work as nodes', () => {
    expect(parseNodePids([`${A}:1234`, `${B}:1234`, `${B}:7`], [A, B])).toEqual([
      { node: A, pid: 1234 },
      { node: B, pid: 1234 },
      { node: B, pid: 7 },
    ]);
    expect(parseNodePids([`${SOCK}:42`], [SOCK, A])).toEqual([{ node: SOCK, pid: 42 }]);
  });

  it('takes an IPv6 node as its label or in the bracket form [host]:port', () => {
    expect(parseNodePids(['::1:5432:99', '[::1]:5432:100'], [V6, A])).toEqual([
      { node: V6, pid: 99 },
      { node: V6, pid: 100 },
    ]);
    expect(usage(() => parseNodePids(['[::1]:5433:99'], [V6, A])).message).toContain('unknown node "[::1]:5433"');
  });

  it('the same pid on the same node once; on two nodes it is two sessions', () => {
    expect(parseNodePids([`${A}:5`, ` ${A}:5 `, `${B}:5`], [A, B])).toEqual([
      { node: A, pid: 5 },
      { node: B, pid: 5 },
    ]);
  });

  it('with several nodes a plain pid is ambiguous: exit 2, naming the nodes', () => {
    const e = usage(() => parseNodePids([`${A}:1`, '1234'], [A, B]));
    expect(e.message).toBe(`pid 1234 is ambiguous: qualify it as NODE:PID (nodes: ${A}, ${B})`);
    expect(e.hint).toContain(`${A}:1234`);
  });

  it('an unknown node: exit 2, listing the valid labels; no positional or partial names', () => {
    for (const bad of ['primary:1', '10.0.0.1:1', '1:1', '10.0.0.1:5432x:1', ':1']) {
      const e = usage(() => parseNodePids([bad], [A, B]));
      expect(e.message, bad).toContain('unknown node');
      expect(e.message, bad).toContain(`(nodes: ${A}, ${B})`);
    }
  });

  it('with one node, plain pids work and NODE:PID naming that node works too', () => {
    expect(parseNodePids(['12', `${A}:13`, `${A}:12`], [A])).toEqual([
      { node: A, pid: 12 },
      { node: A, pid: 13 },
    ]);
    expect(usage(() => parseNodePids([`${B}:12`], [A])).message).toContain(`unknown node "${B}" in "${B}:12" (nodes: ${A})`);
  });

  it('the pid part is checked like a plain pid', () => {
    for (const bad of [`${A}:`, `${A}:0`, `${A}:x`, `${A}:-1`, `${A}:2147483648`, `${A}: 5`])
      expect(usage(() => parseNodePids([bad], [A, B])).message, bad).toContain('invalid pid');
    usage(() => parseNodePids([], [A, B]));
  });

  it('pidRef: bare with one node, NODE:PID with several', () => {
    expect(pidRef(A, 5, false)).toBe('5');
    expect(pidRef(A, 5, true)).toBe(`${A}:5`);
  });
});

describe('killNodes: --target as guard takes it', () => {
  it('defaults to the connection options: one node, host:port, application_name pgrevoke', async () => {
    const [n, ...rest] = await killNodes({}, { dsn: 'postgresql://u@db1:6543/x' });
    expect(rest).toEqual([]);
    expect(n!.name).toBe('db1:6543');
    expect(n!.params.applicationName).toBe('pgrevoke');
  });

  it('repeats, one node each; -U and -d apply to every target; an explicit application_name stays', async () => {
    const nodes = await killNodes(
      { target: ['host=a port=5432', 'postgresql://b:5433/app?application_name=mine'] },
      { username: 'ops', dbname: 'postgres' },
    );
    expect(nodes.map((n) => n.name)).toEqual(['a:5432', 'b:5433']);
    expect(nodes.map((n) => [n.params.user, n.params.database, n.params.applicationName])).toEqual([
      ['ops', 'postgres', 'pgrevoke'],
      ['ops', 'postgres', 'mine'],
    ]);
  });

  it('refuses --target with --dsn, --host or --port, and the same node twice', async () => {
    await expect(killNodes({ target: ['host=a'] }, { dsn: 'host=b' })).rejects.toThrow(/does not combine/);
    await expect(killNodes({ target: ['host=a'] }, { port: '5' })).rejects.toThrow(/does not combine/);
    await expect(killNodes({ target: ['host=a port=1', 'postgresql://a:1/other'] }, {})).rejects.toThrow(/named twice/);
  });
});

describe('results per node', () => {
  it('an unreachable node: each of its pids fails with the reason, never signalled', () => {
    const rs = unreachableResults([7, 8], { node: B, qualify: true }, 'terminate', 'could not connect to x: connection refused');
    expect(rs.map((r) => [r.node, r.pid, r.status, r.ok, r.at])).toEqual([
      [B, 7, 'unreachable', false, null],
      [B, 8, 'unreachable', false, null],
    ]);
    expect(rs[0]!.error).toBe(`pid ${B}:7 was not signalled: node ${B} is unreachable: could not connect to x: connection refused`);
    expect(killExitCode(rs)).toBe(ExitCode.USAGE);
    expect(killExitCode([result({}), ...rs])).toBe(ExitCode.PARTIAL);
    expect(killAuditEntries(rs, [], { operator: { dbUser: 'x', osUser: 'y', host: 'z' } })).toEqual([]);
  });

  it('JSON carries the node; audit lines carry the node and its own dbUser; equal pids on two nodes stay apart', () => {
    const results = [result({ node: A, pid: 5 }), result({ node: B, pid: 5, user: 'eve' })];
    expect(killDoc(results).results.map((r) => [r.node, r.pid, r.user])).toEqual([
      [A, 5, 'bob'],
      [B, 5, 'eve'],
    ]);
    const entries = killAuditEntries(results, [target({ node: B, pid: 5, applicationName: 'on-b' }), target({ node: A, pid: 5 })], {
      operator: (node) => ({ dbUser: node === A ? 'ops-a' : 'ops-b', osUser: 'alice', host: 'laptop' }),
    });
    expect(entries.map((e) => [e.node, e.operator.dbUser, e.session.pid, e.session.application])).toEqual([
      [A, 'ops-a', 5, 'psql'],
      [B, 'ops-b', 5, 'on-b'],
    ]);
  });

  it('the confirmation listing and the result lines name pids as NODE:PID', () => {
    const c = new Chalk({ level: 0 });
    const listing = renderKillTargets([target({ node: B, pid: 42 })], c);
    expect(listing).toContain(`${B}:42`);
    const { done, failed } = renderKillResults(
      [result({ node: B, pid: 42 }), ...unreachableResults([9], { node: A, qualify: true }, 'terminate', 'down')],
      c,
    );
    expect(done).toEqual([`ok terminated pid ${B}:42 (bob@app)`]);
    expect(failed[0]).toContain(`pid ${A}:9 was not signalled`);
  });
});
