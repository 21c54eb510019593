// guard --on-membership-revoked takes the server's major version from the connection's setup
// (GUARD_SETUP), which reads it anyway: no statement of its own per connection. The guard runs as a
// library against a real server through real connections whose statements are recorded; its
// connection is ended once, so that the reconnect's setup is seen too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Guard, type GuardConfig, type GuardClient, type GuardEvent } from '../../src/guard/index.js';
import { timeoutRules } from '../../src/guard/options.js';
import { GUARD_SETUP } from '../../src/guard/sql.js';
import { connect } from '../../src/pg/connect.js';
import { resolveConnParams, type ConnParams } from '../../src/pg/conninfo.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { until } from '../helpers/guard.js';

describe.each(MAJORS)('guard --on-membership-revoked and the server major on PostgreSQL %i', (major) => {
  let cl: TestCluster;

  beforeAll(async () => {
    cl = await startCluster(major);
  });
  afterAll(async () => {
    await cl?.destroyAll();
  });

  it('the major comes from the setup of each connection, not from a statement of the membership pass', async () => {
    const texts: string[] = [];
    const recording = async (p: ConnParams): Promise<GuardClient> => {
      const c = await connect(p);
      const query = c.query.bind(c) as GuardClient['query'];
      const client: GuardClient = {
        query: (cfg) => {
          texts.push(cfg.text);
          return query(cfg);
        },
        end: () => c.end(),
        on: (event, listener) => c.on(event, listener),
      };
      return client;
    };
    const params = resolveConnParams({ dsn: cl.dsn() }, {});
    const cfg: GuardConfig = {
      nodes: [{ name: 'n1', params: { ...params, applicationName: 'pgrevoke-guard' } }],
      deny: [],
      denyFile: null,
      exclude: [],
      idle: timeoutRules(undefined, undefined, '--idle-timeout'),
      idleInTransaction: timeoutRules(undefined, undefined, '--idle-in-transaction-timeout'),
      intervalMs: 50,
      dryRun: false,
      auditLog: null,
      operator: { osUser: 'tester', host: 'testhost' },
      onMembershipRevoked: true,
      backoff: { minMs: 10, maxMs: 50 },
      connect: recording,
    };
    const events: GuardEvent[] = [];
    const guard = new Guard(cfg, (e) => events.push(e));
    await guard.init();
    const running = guard.run();
    const probes = () => texts.filter((t) => t.includes('pg_auth_members')).length;
    await until(() => probes() >= 5, 10_000, 'membership passes');
    await cl.sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgrevoke-guard'`);
    await until(() => events.filter((e) => e.type === 'connected').length === 2, 10_000, 'the reconnect');
    const after = probes();
    await until(() => probes() >= after + 5, 10_000, 'membership passes after the reconnect');
    await guard.stop();
    await running;

    // the termination may land in a membership pass: that pass says so; nothing else fails
    expect(events.filter((e) => e.type === 'error' && !e.message.includes('57P01'))).toEqual([]);
    const majorReads = texts.filter((t) => t.includes('server_version_num'));
    expect(majorReads).toEqual([GUARD_SETUP, GUARD_SETUP]);
  });
});
