// The log reader's look back (SqlLogSource `back`, what inspect and cutoff's verification read)
// against real servers: N bytes before the end of the current file, into the file before it after
// a rotation when the current one is shorter, begun at an entry boundary (a start inside an entry
// moves to the next one: no torn entry read), the first poll returning everything from there, and
// backStart saying where that was and the time of its first entry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogFormat } from '../../src/serverlog/record.js';
import { SqlLogSource } from '../../src/serverlog/sql-source.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { attempt, pollFor } from '../helpers/serverlog.js';

const HBA = ['local all all trust', 'host all all 127.0.0.0/8 scram-sha-256'].join('\n');

describe.each(MAJORS)('log reader look back, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  const formats: LogFormat[] = major >= 15 ? ['csvlog', 'jsonlog'] : ['csvlog'];
  const current = async (format: LogFormat) => (await cl.sql<{ f: string }>(`SELECT pg_current_logfile($1) AS f`, [format]))[0]!.f;
  const content = async (file: string) => (await cl.sql<{ b: Buffer }>(`SELECT pg_read_binary_file($1) AS b`, [file]))[0]!.b;
  const addresses = (fs: { address: string | null }[]) => fs.map((f) => f.address);

  beforeAll(async () => {
    cl = await startCluster(major, {
      logging_collector: 'on',
      log_destination: major >= 15 ? `'csvlog,jsonlog'` : `'csvlog'`,
      log_filename: `'postgresql-%Y-%m-%d_%H%M%S'`,
    });
    await cl.writeDataFile('pg_hba.conf', `${HBA}\n`);
    await cl.sql('SELECT pg_reload_conf()');
    const source = new SqlLogSource(cl.admin, { format: 'csvlog' });
    await source.poll();
    for (const from of ['127.0.0.21', '127.0.0.22', '127.0.0.23']) await attempt(cl, { user: 'mallory', from });
    await pollFor(source, 3);
    const before = await current('csvlog');
    await new Promise((r) => setTimeout(r, 1100)); // the next file's name has the next second
    await cl.sql('SELECT pg_rotate_logfile()');
    for (const end = Date.now() + 10_000; (await current('csvlog')) === before && Date.now() < end;)
      await new Promise((r) => setTimeout(r, 50));
    for (const from of ['127.0.0.24', '127.0.0.25']) await attempt(cl, { user: 'mallory', from });
    await pollFor(source, 2);
  });
  afterAll(async () => cl?.destroyAll());

  it.each(formats)('%s: a look back longer than the current file reads the one before it too, each failure once', async (format) => {
    const source = new SqlLogSource(cl.admin, { format, back: 1024 * 1024 });
    const got = await source.poll();
    expect(addresses(got)).toEqual(['127.0.0.21', '127.0.0.22', '127.0.0.23', '127.0.0.24', '127.0.0.25']);
    const start = source.backStart!;
    expect(start.file).not.toBe(await current(format)); // the file before the rotation
    expect(start.offset).toBe(0);
    expect(Date.parse(start.at!)).toBeLessThanOrEqual(Date.parse(got[0]!.at));
    expect(source.cursor()!.file).toBe(await current(format));
    expect(await source.poll()).toEqual([]); // then on from the end, as any source
  });

  it.each(formats)('%s: a look back that begins inside an entry starts at the next one, nothing torn', async (format) => {
    const file = await current(format);
    const data = await content(file);
    // the entry that logged the failure from 127.0.0.25, and a start a few bytes inside the one before it
    const entry = data.lastIndexOf(0x0a, data.indexOf('127.0.0.25')) + 1;
    const exact = new SqlLogSource(cl.admin, { format, back: data.length - entry });
    expect(addresses(await exact.poll())).toEqual(['127.0.0.25']);
    expect(exact.backStart).toMatchObject({ file, offset: entry });
    const inside = new SqlLogSource(cl.admin, { format, back: data.length - entry + 5 });
    expect(addresses(await inside.poll())).toEqual(['127.0.0.25']);
    expect(inside.backStart!.offset).toBe(entry);
    expect(inside.tailStats()).toMatchObject({ oversized: 0, unreadable: 0 });
    expect(Date.parse(inside.backStart!.at!)).toBeLessThanOrEqual(Date.now());
  });
});
