// The SQL source reads log_hostname: with it on, the log's hosts are reverse-DNS names a client
// controls, so the source says so and gives no failure an address (red-team finding, issue 16).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlLogSource } from '../../src/serverlog/sql-source.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { attempt, pollFor } from '../helpers/serverlog.js';

describe.each(MAJORS)('log_hostname on PostgreSQL %i', (major) => {
  let cl: TestCluster;

  beforeAll(async () => {
    cl = await startCluster(major, { logging_collector: 'on', log_destination: `'csvlog'`, log_hostname: 'on' });
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'alice-pw'`);
  });
  afterAll(async () => cl?.destroyAll());

  it('the source warns, and the failure is counted for its role without an address', async () => {
    const source = new SqlLogSource(cl.admin, { format: 'csvlog' });
    await source.poll();
    expect(await attempt(cl, { user: 'alice' })).toBe('28P01');
    const [f] = await pollFor(source, 1);
    expect(f).toMatchObject({ user: 'alice', kind: 'password', address: null });
    expect(source.warnings.join('\n')).toMatch(/log_hostname is on: .*no failure has an address/);
  });
});
