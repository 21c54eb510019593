// Red team (issue 16): stderr's forgery defence (src/serverlog/stderr.ts, extract.ts) throws away
// entries it takes as forged. Can an attacker guessing alice's password use it to hide its own real
// failures, by choosing the database name of its guesses, or by forging, from a second connection,
// a copy of its real failure line? The real failures must still count, and the forged line must not.
// Debian's layout (no collector, stderr to one file, '%m [%p] %q%u@%d ', log_connections), read
// by the real file source.
import { promises as fs } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileLogSource } from '../../src/serverlog/file-source.js';
import { MAJORS, startCluster, type TestCluster } from '../helpers/cluster.js';
import { attempt, fields, pollFor } from '../helpers/serverlog.js';

const HBA = ['local all all trust', 'host all all 127.0.0.0/8 scram-sha-256'].join('\n');

describe.each(MAJORS)('red team: hiding real failures behind stderr forgery marks, PostgreSQL %i', (major) => {
  let cl: TestCluster;
  beforeAll(async () => {
    cl = await startCluster(major, { log_line_prefix: `'%m [%p] %q%u@%d '`, log_connections: major >= 18 ? `'receipt'` : 'on' });
    await cl.writeDataFile('pg_hba.conf', `${HBA}\n`);
    await cl.sql('SELECT pg_reload_conf()');
    await cl.sql(`CREATE ROLE alice LOGIN PASSWORD 'alice-pw'`);
  });
  afterAll(async () => cl?.destroyAll());

  it('guesses whose database name repeats the failure message still count, each once, from their address', async () => {
    const source = new FileLogSource({ file: cl.logFile });
    await source.poll();
    // the line reads two ways: database `x`, or database `x FATAL:  password ... "alice"`: both a failure of alice
    const dbs = ['x FATAL:  password authentication failed for user "alice"', 'x@y', 'x LOG:  y', 'x DETAIL:  y'];
    for (const database of dbs) expect(await attempt(cl, { user: 'alice', database, from: '127.0.0.51' })).toBe('28P01');
    const got = await pollFor(source, dbs.length);
    expect(got.map((f) => [f.user, f.address, f.kind])).toEqual(dbs.map(() => ['alice', '127.0.0.51', 'password']));
  });

  it('a forged copy of a real failure line, logged after it by a second connection, does not hide the real one', async () => {
    const source = new FileLogSource({ file: cl.logFile });
    await source.poll();
    const before = (await fs.stat(cl.logFile)).size;
    // the guess names database `d` (authentication comes first): short enough for a whole copy of its line to fit the names
    expect(await attempt(cl, { user: 'alice', database: 'd', from: '127.0.0.52' })).toBe('28P01');
    await new Promise((r) => setTimeout(r, 200));
    // what the attacker would have to predict (pid, time to the ms): here read from the log itself, the worst case
    const tail = (await fs.readFile(cl.logFile)).subarray(before).toString('utf8');
    const real = /^(.* \[\d+\] )alice@(d FATAL: {2}password authentication failed for user "alice")$/m.exec(tail);
    expect(real).not.toBeNull();
    // the copy: a line of its own, between the forger's real line's start and its rest
    const user = `\n${real![1]}alice`;
    const database = `${real![2]}\n`;
    for (const s of [user, database]) expect(Buffer.byteLength(s)).toBeLessThanOrEqual(63);
    expect(await attempt(cl, { user, database, from: '127.0.0.53' })).toBe('28P01');
    const got = await pollFor(source, 1);
    const log = await fs.readFile(cl.logFile, 'utf8');
    expect(log.split(`\n${real![0]}\n`).length).toBeGreaterThanOrEqual(3);
    // the real failure once, from its own address; the copy is not counted
    expect(got.map(fields)).toEqual([{ user: 'alice', address: '127.0.0.52', database: 'd', kind: 'password', sqlstate: '28P01' }]);
    expect(source.tailStats().suspect).toBeGreaterThan(0);
  });
});
