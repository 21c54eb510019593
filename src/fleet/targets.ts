// The nodes a command acts on, and the PgBouncer consoles in front of them: `--target DSN`
// (repeatable), `--fleet FILE` narrowed by `--only TAG` (repeatable), `--pgbouncer DSN`
// (repeatable), or, with no --target and no --fleet, the one node of the usual connection options.
import type { GlobalOptions } from '../context.js';
import { usageError } from '../errors.js';
import { nodeLabel, resolveConnParams, type ConnParams, type TargetNode } from '../pg/conninfo.js';
import { resolveDsn } from './dsn.js';
import type { FleetCluster } from './file.js';

export interface TargetOptions {
  target?: string[];
  fleet?: string;
  only?: string[];
  pgbouncer?: string[];
}

/** A node, with the fleet cluster it belongs to (null for --target and the default node) and that cluster's tags. */
export interface FleetNode extends TargetNode {
  cluster: string | null;
  tags: string[];
}

/** A PgBouncer admin console: its DSN as given, and its fleet cluster (null for --pgbouncer). */
export interface PgbouncerTarget {
  dsn: string;
  cluster: string | null;
}

export interface ResolvedTargets {
  nodes: FleetNode[];
  pgbouncers: PgbouncerTarget[];
}

/**
 * Resolve the nodes, in order: each --target, then the selected fleet clusters' nodes in file
 * order. `-U`, `-d` and `--connect-timeout` apply to every node (flags first, as for psql
 * parameters everywhere in pgrevoke); --dsn, --host and --port do not combine with --target or
 * --fleet. A node's name is its fleet name:, else host:port; two nodes with one name are refused.
 * `appName` replaces the default application_name, so the server shows who is connected.
 */
export async function resolveTargets(opts: TargetOptions, g: GlobalOptions, appName: string): Promise<ResolvedTargets> {
  // the fleet parser (YAML, zod) loads only when there is a fleet file: --target is on cutoff's critical path
  let clusters: FleetCluster[] | null = null;
  if (opts.fleet) {
    const { loadFleet, selectClusters } = await import('./file.js');
    clusters = selectClusters(loadFleet(opts.fleet), opts.only);
  }
  return targetsFrom(opts, g, appName, clusters);
}

/** resolveTargets with the fleet's selected clusters already loaded (null: no --fleet). */
export function targetsFrom(opts: TargetOptions, g: GlobalOptions, appName: string, clusters: FleetCluster[] | null): ResolvedTargets {
  const targets = opts.target ?? [];
  if (opts.only?.length && !opts.fleet) throw usageError('--only selects clusters from a fleet file: give --fleet FILE');
  if ((targets.length || opts.fleet) && (g.dsn || g.host || g.port))
    throw usageError(
      `${targets.length ? '--target' : '--fleet'} names the nodes: it does not combine with --dsn, --host or --port`,
      "put each node's host and port in its --target or fleet entry (user, database and connect timeout flags apply to every node)",
    );
  const { username, dbname, connectTimeout } = g;
  const resolve = (conninfo: string, where: string): ConnParams => resolveDsn(conninfo, where, { username, dbname, connectTimeout });
  const node = (p: ConnParams, name: string | null, cluster: string | null, tags: string[]): FleetNode => ({
    name: name ?? nodeLabel(p),
    params: p.applicationName === 'pgrevoke' ? { ...p, applicationName: appName } : p,
    cluster,
    tags,
  });

  const nodes: FleetNode[] = targets.map((dsn, i) => node(resolve(dsn, `--target #${i + 1}`), null, null, []));
  const pgbouncers: PgbouncerTarget[] = (opts.pgbouncer ?? []).map((dsn, i) => {
    resolveDsn(dsn, `--pgbouncer #${i + 1}`);
    return { dsn, cluster: null };
  });
  if (clusters) {
    for (const c of clusters) {
      c.nodes.forEach((n, i) =>
        nodes.push(node(resolve(n.conninfo, `cluster "${c.name}", node ${n.name ? `"${n.name}"` : `#${i + 1}`}`), n.name, c.name, c.tags)),
      );
      pgbouncers.push(...c.pgbouncer.map((dsn) => ({ dsn, cluster: c.name })));
    }
  }
  if (!targets.length && !opts.fleet) {
    const { dsn, host, port } = g;
    nodes.push(node(resolveConnParams({ dsn, host, port, username, dbname, connectTimeout }), null, null, []));
  }

  const names = nodes.map((n) => n.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup)
    throw usageError(
      `node ${dup} is named twice`,
      opts.fleet
        ? 'each --target and fleet node must be a different host:port, or carry its own name: in the fleet file'
        : 'each --target must be a different host:port',
    );
  return { nodes, pgbouncers };
}
