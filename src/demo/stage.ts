// A realistic compromise staged on a throwaway cluster, for `pgrevoke demo` (and its test):
// an exfiltration loop that reconnects when cut, a lock blocking a bystander, a prepared
// transaction, a reject rule shadowed by an earlier line, and a SECURITY DEFINER backdoor.
import pg from 'pg';
import type { EmbeddedCluster } from '../embedded/cluster.js';
import { Attacker } from './attacker.js';

export const DEMO_ROLE = 'mallory';
export const DEMO_BYSTANDER = 'alice';

export const DEMO_HBA = `# pg_hba.conf staged by pgrevoke demo
local   all   all                       trust
host    all   postgres  127.0.0.1/32    scram-sha-256
host    all   all       127.0.0.1/32    scram-sha-256
# someone "revoked" mallory here, below a line that matches first: this never fires
host    all   mallory   0.0.0.0/0       reject
`;

export interface Staged {
  attacker: Attacker;
  /** The bystander whose UPDATE waits on mallory's row lock; resolves when it completes. */
  blockedUpdate: Promise<boolean>;
  bystander: pg.Client;
  bystanderPid: number;
  teardown(): Promise<void>;
}

export async function stageCompromise(cluster: EmbeddedCluster, opts: { attackSessions?: number } = {}): Promise<Staged> {
  const admin = new pg.Client({ connectionString: cluster.url() });
  admin.on('error', () => undefined);
  await admin.connect();
  const clients: pg.Client[] = [admin];
  const connectAs = async (user: string, password: string) => {
    const c = new pg.Client({ connectionString: cluster.url(user, password) });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };
  await cluster.writeDataFile('pg_hba.conf', DEMO_HBA);
  await admin.query('SELECT pg_reload_conf()');
  await admin.query(`CREATE ROLE ${DEMO_ROLE} LOGIN PASSWORD 'leaked-on-pastebin'`);
  await admin.query(`CREATE ROLE ${DEMO_BYSTANDER} LOGIN PASSWORD 'alice-pw'`);
  await admin.query(`CREATE TABLE customers (id int PRIMARY KEY, email text, card text)`);
  await admin.query(`INSERT INTO customers SELECT g, 'user' || g || '@example.com', '4111-' || g FROM generate_series(1, 100) g`);
  await admin.query(`GRANT SELECT, UPDATE ON customers TO ${DEMO_ROLE}, ${DEMO_BYSTANDER}`);
  await admin.query(
    `CREATE FUNCTION export_customers() RETURNS SETOF customers LANGUAGE sql SECURITY DEFINER AS 'SELECT * FROM customers'`,
  );
  await admin.query(`ALTER FUNCTION export_customers() OWNER TO ${DEMO_ROLE}`);

  // a lock held by the attacker, blocking the bystander's update
  const holder = await connectAs(DEMO_ROLE, 'leaked-on-pastebin');
  await holder.query('BEGIN');
  await holder.query('SELECT * FROM customers WHERE id = 1 FOR UPDATE');
  const bystander = await connectAs(DEMO_BYSTANDER, 'alice-pw');
  const bystanderPid = (await bystander.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const blockedUpdate = bystander.query(`UPDATE customers SET email = email WHERE id = 1`).then(
    () => true,
    () => false,
  );

  // a prepared transaction: survives every session ending, keeps its row lock
  const preparer = await connectAs(DEMO_ROLE, 'leaked-on-pastebin');
  await preparer.query('BEGIN');
  await preparer.query(`UPDATE customers SET card = 'stolen' WHERE id = 2`);
  await preparer.query(`PREPARE TRANSACTION 'mallory-stash'`);
  await preparer.end();

  // the exfiltration loop, reconnecting whenever cut
  const attacker = new Attacker({
    host: '127.0.0.1',
    port: cluster.port,
    user: DEMO_ROLE,
    password: 'leaked-on-pastebin',
    sessions: opts.attackSessions ?? 20,
    intervalMs: 20,
    query: 'SELECT * FROM customers',
  });
  attacker.start();
  const started = Date.now();
  while (attacker.stats.successes < 20 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));

  return {
    attacker,
    blockedUpdate,
    bystander,
    bystanderPid,
    teardown: async () => {
      await attacker.stop();
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    },
  };
}
