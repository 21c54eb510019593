// inspect on a quiet cluster vs the same cluster with 5,000 other roles and 400 other sessions,
// and `pgrevoke --version` (the bundle that ships) vs `node -e 0` and vs tsc's dist/cli.js (what
// shipped before the bundle). Side by side in one run; ratios are the result.
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedCluster } from '../src/embedded/cluster.js';
import { connect } from '../src/pg/connect.js';
import { resolveConnParams } from '../src/pg/conninfo.js';
import { inspectRole } from '../src/inspect/index.js';
import { BIN, machine, median, ROOT, runProcess, timeIt } from './lib.js';

const ROUNDS = 15;
const START_ROUNDS = 30;

async function stage(cl: EmbeddedCluster, admin: pg.Client): Promise<pg.Client[]> {
  await admin.query(`CREATE ROLE mallory LOGIN PASSWORD 'm'`);
  await admin.query(`CREATE TABLE t (id int primary key)`);
  await admin.query(`INSERT INTO t VALUES (1)`);
  await admin.query(`GRANT ALL ON t TO mallory`);
  await admin.query(`CREATE FUNCTION f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'`);
  await admin.query(`ALTER FUNCTION f() OWNER TO mallory`);
  const sessions: pg.Client[] = [];
  for (let i = 0; i < 3; i++) {
    const c = new pg.Client({ connectionString: cl.url('mallory', 'm') });
    await c.connect();
    sessions.push(c);
  }
  await sessions[0]!.query('BEGIN');
  await sessions[0]!.query('SELECT * FROM t FOR UPDATE');
  return sessions;
}

async function measureInspect(dsn: string): Promise<{ lib: number; cli: number }> {
  const params = resolveConnParams({ dsn }, {});
  const lib: number[] = [];
  const cli: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    lib.push(
      await timeIt(async () => {
        const c = await connect(params);
        try {
          await inspectRole(params, c, 'mallory');
        } finally {
          await c.end();
        }
      }),
    );
    cli.push(await timeIt(() => runProcess(process.execPath, [BIN, 'inspect', 'mallory', '--json', '--dsn', dsn])));
  }
  return { lib: median(lib), cli: median(cli) };
}

/** `pgrevoke --version` from the bundle and from tsc's output, and bare node, in turn (the order rotating each round). */
async function measureStart(): Promise<{ bundle: number; dist: number; bare: number; load: number }> {
  const load = os.loadavg()[0]!;
  const runs: Record<'bundle' | 'dist' | 'bare', string[]> = {
    bundle: [BIN, '--version'],
    dist: [path.join(ROOT, 'dist', 'cli.js'), '--version'],
    bare: ['-e', '0'],
  };
  const names = Object.keys(runs) as (keyof typeof runs)[];
  const times: Record<keyof typeof runs, number[]> = { bundle: [], dist: [], bare: [] };
  for (let i = 0; i < START_ROUNDS; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length]!;
      times[name].push(await timeIt(() => runProcess(process.execPath, runs[name])));
    }
  }
  return { bundle: median(times.bundle), dist: median(times.dist), bare: median(times.bare), load };
}

export async function benchInspect(): Promise<string> {
  const cl = new EmbeddedCluster({ password: 'bench' });
  await cl.start();
  const admin = new pg.Client({ connectionString: cl.url() });
  await admin.connect();
  const others: pg.Client[] = [];
  try {
    const mine = await stage(cl, admin);
    const quiet = await measureInspect(cl.url());

    await admin.query(`DO $$ BEGIN FOR i IN 1..5000 LOOP EXECUTE format('CREATE ROLE %I LOGIN', 'other_' || i); END LOOP; END $$`);
    await admin.query(`CREATE ROLE crowd LOGIN PASSWORD 'c'`);
    for (let i = 0; i < 400; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const c = new pg.Client({ connectionString: cl.url('crowd', 'c') });
          await c.connect();
          return c;
        }),
      );
      others.push(...batch);
    }
    const busy = await measureInspect(cl.url());
    await Promise.all([...mine, ...others].map((c) => c.end()));

    const start = await measureStart();
    const ratio = (x: number, y: number) => (x / y).toFixed(2);
    return `## inspect: cost does not grow with what does not concern the role

Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}; embedded PostgreSQL ${cl.major}; median of ${ROUNDS} runs each, quiet and busy measured in the same run.
The role under inspection has 3 sessions (one holding a row lock) and a SECURITY DEFINER function. "Busy" adds 5,000 other roles and 400 other idle sessions.

| what | quiet cluster | 5,000 roles + 400 sessions | ratio (target <= 2x) |
|---|---|---|---|
| inspect, library call incl. connect | ${quiet.lib.toFixed(1)} ms | ${busy.lib.toFixed(1)} ms | ${ratio(busy.lib, quiet.lib)}x |
| \`pgrevoke inspect --json\` as a process | ${quiet.cli.toFixed(1)} ms | ${busy.cli.toFixed(1)} ms | ${ratio(busy.cli, quiet.cli)}x |

## start-up: \`pgrevoke --version\` vs \`node -e 0\`

Median of ${START_ROUNDS} alternating runs (1-minute load average ${start.load.toFixed(2)} when they began): \`pgrevoke --version\` (bin/pgrevoke.js, the code-split bundle) ${start.bundle.toFixed(1)} ms, \`node -e 0\` ${start.bare.toFixed(1)} ms: **${ratio(start.bundle, start.bare)}x** (target <= 1.3x). tsc's output (\`node dist/cli.js --version\`, what shipped before the bundle) ${start.dist.toFixed(1)} ms, ${ratio(start.dist, start.bare)}x. Commands are imported only when they run.`;
  } finally {
    await admin.end().catch(() => undefined);
    await cl.destroy();
  }
}
