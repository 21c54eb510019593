// sessions --client: the SQL test (`client_addr <<= ANY(...)` over clientRanges) and its client-side
// twin (clientMatches, for hidden backends) agree, as the server evaluates inet, and both take an
// IPv4 range for either form of an IPv4 client (10.0.0.1, ::ffff:10.0.0.1). The server never shows a
// client in the mapped form from its own sockets (it binds IPv6 with IPV6_V6ONLY), so the addresses
// are inet values here, not sessions.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedCluster } from '../../src/embedded/cluster.js';
import { clientMatches, clientRanges, parseClient } from '../../src/sessions/filters.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';

const CASES: [string, string[], boolean][] = [
  ['10.0.0.1', ['10.0.0.1'], true],
  ['::ffff:10.0.0.1', ['10.0.0.1'], true],
  ['::ffff:10.0.0.1', ['10.0.0.0/8'], true],
  ['10.0.0.1', ['::ffff:10.0.0.0/104'], true],
  ['::ffff:10.0.0.1', ['::ffff:10.0.0.0/104'], true],
  ['::ffff:11.0.0.1', ['10.0.0.0/8'], false],
  ['::a00:1', ['10.0.0.0/8'], false],
  ['10.0.0.1', ['fd00::/8'], false],
  ['fd00::1', ['fd00::/8', '10.0.0.0/8'], true],
  ['::1', ['127.0.0.0/8'], false],
];

describe.each(MAJORS)('sessions --client ranges on PostgreSQL %i', (major) => {
  let cl: TestCluster;
  beforeAll(async () => {
    cl = await startCluster(major);
  });
  afterAll(async () => cl?.destroyAll());

  it.each(CASES)('%s in %j: %s, in SQL and client-side alike', async (address, given, expected) => {
    const ranges = given.map(parseClient);
    const [row] = await cl.sql<{ m: boolean }>('SELECT $1::inet <<= ANY($2::inet[]) AS m', [address, clientRanges(ranges)]);
    expect([row!.m, clientMatches(address, ranges)]).toEqual([expected, expected]);
  });

  it('the server binds IPv6 IPv6-only: with listen_addresses = :: an IPv4 client is refused, not shown mapped', async () => {
    const v6 = new EmbeddedCluster({ major, password: 'x', settings: { listen_addresses: `'::'` } });
    await v6.start();
    try {
      const reach = (host: string) =>
        new Promise<string>((resolve) => {
          const s = net.connect({ host, port: v6.port });
          s.on('connect', () => {
            resolve('connected');
            s.destroy();
          });
          s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        });
      expect([await reach('::1'), await reach('127.0.0.1'), await reach('::ffff:127.0.0.1')]).toEqual([
        'connected',
        'ECONNREFUSED',
        'ECONNREFUSED',
      ]);
    } finally {
      await v6.destroy();
    }
  });
});
