// The fleet file (--fleet FILE): the clusters pgrevoke acts on, their nodes and PgBouncer admin
// consoles, with tags that --only selects from.
//
//   clusters:
//     - name: billing                                    # unique, no spaces
//       tags: [prod, eu]                                 # optional
//       nodes:                                           # at least one
//         - postgresql://admin@10.0.0.1:5432/postgres    # a plain string is a DSN (URI or key=value)
//         - dsn: host=10.0.0.2 port=5432 user=admin
//           name: billing-replica                        # optional display name (default host:port)
//         - service: billing-dr                          # a pg_service.conf entry (PGSERVICEFILE, ~/.pg_service.conf)
//       pgbouncer:                                       # optional admin consoles for this cluster
//         - postgresql://pgbouncer@10.0.0.5:6432/pgbouncer
//
// Each node is a DSN string or a mapping with exactly one of dsn/service (and optionally name).
// Unknown keys are rejected. Every DSN and service is resolved here, as the connection would be,
// so that a bad one is an error naming its line, field and cluster (never its password). Node
// names (the explicit name, else host:port) are unique across the fleet: they are what NODE:PID,
// reports and audit lines call the node.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ExitCode, PgrevokeError, usageError } from '../errors.js';
import { nodeLabel, type ConnParams } from '../pg/conninfo.js';
import { resolveDsn } from './dsn.js';
import { fieldName, parseYamlWith, type YamlPath, type YamlProblem } from '../util/yaml.js';

export interface FleetNodeEntry {
  /** The DSN as written, or null for a service entry. */
  dsn: string | null;
  /** The pg_service.conf entry, or null for a DSN. */
  service: string | null;
  /** The explicit display name, or null for host:port. */
  name: string | null;
  /** What resolveConnParams takes for this node: the DSN, or service=NAME. */
  conninfo: string;
}

export interface FleetCluster {
  name: string;
  tags: string[];
  nodes: FleetNodeEntry[];
  /** PgBouncer admin console DSNs for this cluster. */
  pgbouncer: string[];
}

export interface Fleet {
  file: string;
  clusters: FleetCluster[];
}

const HINT =
  'a fleet file is `clusters:`, each with name, nodes (DSN strings, or dsn: or service: with an optional name:), optional tags and pgbouncer';

const Name = z.string().min(1, 'must not be empty').regex(/^\S+$/, 'no spaces');

const Dsn = z.string().min(1, 'must not be empty');

const NodeObject = z.strictObject({ dsn: Dsn.optional(), service: Name.optional(), name: Name.optional() }).superRefine((n, ctx) => {
  if (n.dsn !== undefined && n.service !== undefined)
    ctx.addIssue({ code: 'custom', path: ['service'], message: 'a node has dsn: or service:, not both' });
  else if (n.dsn === undefined && n.service === undefined)
    ctx.addIssue({ code: 'custom', path: [], message: 'a node needs dsn: or service:' });
});

const ClusterSchema = z.strictObject({
  name: Name,
  tags: z.array(Name).default([]),
  nodes: z
    .array(z.union([Dsn, NodeObject], { error: 'a node is a DSN string or a mapping with dsn: or service:' }))
    .min(1, 'a cluster needs at least one node'),
  pgbouncer: z.array(Dsn).default([]),
});

const FleetSchema = z.strictObject({ clusters: z.array(ClusterSchema).min(1, 'a fleet needs at least one cluster') });
type FleetData = z.output<typeof FleetSchema>;

/** service=NAME in libpq's keyword form, quoted so that any name survives. */
function serviceConninfo(service: string): string {
  return `service='${service.replace(/['\\]/g, '\\$&')}'`;
}

/** resolveDsn (which refuses a user name PostgreSQL would cut, see role-name.ts), its failure as a problem at `path`. */
function resolvedAt(conninfo: string, where: string, path: YamlPath): ConnParams | YamlProblem {
  try {
    return resolveDsn(conninfo, where);
  } catch (err) {
    return { path, message: (err as PgrevokeError).message, hint: (err as PgrevokeError).hint };
  }
}

function nodeEntry(n: string | { dsn?: string; service?: string; name?: string }): FleetNodeEntry {
  if (typeof n === 'string') return { dsn: n, service: null, name: null, conninfo: n };
  return {
    dsn: n.dsn ?? null,
    service: n.service ?? null,
    name: n.name ?? null,
    conninfo: n.dsn ?? serviceConninfo(n.service!),
  };
}

/** What the schema cannot say: unique cluster and node names, resolvable DSNs and services. */
function checkFleet(data: FleetData): YamlProblem | null {
  const clusterAt = new Map<string, number>();
  const nodeAt = new Map<string, YamlPath>();
  for (const [ci, cluster] of data.clusters.entries()) {
    const first = clusterAt.get(cluster.name);
    if (first !== undefined)
      return {
        path: ['clusters', ci, 'name'],
        message: `cluster "${cluster.name}" is already clusters[${first}]: cluster names are unique`,
      };
    clusterAt.set(cluster.name, ci);
    for (const [ni, raw] of cluster.nodes.entries()) {
      const node = nodeEntry(raw);
      const where = `cluster "${cluster.name}", node ${node.name ? `"${node.name}"` : `#${ni + 1}`}`;
      const params = resolvedAt(node.conninfo, where, [
        'clusters',
        ci,
        'nodes',
        ni,
        ...(typeof raw === 'string' ? [] : [node.dsn !== null ? 'dsn' : 'service']),
      ]);
      if ('path' in params) return params;
      const name = node.name ?? nodeLabel(params);
      const seen = nodeAt.get(name);
      if (seen)
        return {
          path: ['clusters', ci, 'nodes', ni, ...(node.name ? ['name'] : [])],
          message: `${where}: node name "${name}" is already ${fieldName(seen)}`,
          hint: 'node names (name:, else host:port) are unique across the fleet: give one of them a name:',
        };
      nodeAt.set(name, ['clusters', ci, 'nodes', ni]);
    }
    for (const [bi, dsn] of cluster.pgbouncer.entries()) {
      const checked = resolvedAt(dsn, `cluster "${cluster.name}", pgbouncer #${bi + 1}`, ['clusters', ci, 'pgbouncer', bi]);
      if ('path' in checked) return checked;
    }
  }
  return null;
}

/** Parse and validate fleet text; errors (exit 2) name the file, the line and the field. */
export function parseFleet(text: string, file: string): Fleet {
  const data = parseYamlWith(text, file, FleetSchema, { what: 'fleet', hint: HINT, check: checkFleet });
  return {
    file,
    clusters: data.clusters.map((c) => ({
      name: c.name,
      tags: [...new Set(c.tags)],
      nodes: c.nodes.map(nodeEntry),
      pgbouncer: c.pgbouncer,
    })),
  };
}

export function loadFleet(file: string): Fleet {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PgrevokeError(
      code === 'ENOENT' ? `fleet file not found: ${file}` : `could not read fleet file ${file}: ${(err as Error).message}`,
      {
        exitCode: ExitCode.USAGE,
        cause: err,
      },
    );
  }
  return parseFleet(text, file);
}

/**
 * The clusters `--only` selects: those with any of the tags, or named by a value; all of them
 * without --only. A value that matches no cluster is an error, not a silent narrowing: in an
 * incident a typo must not leave a cluster out.
 */
export function selectClusters(fleet: Fleet, only: readonly string[] | undefined): FleetCluster[] {
  if (!only?.length) return fleet.clusters;
  const matches = (c: FleetCluster, v: string) => c.name === v || c.tags.includes(v);
  const unknown = [...new Set(only.filter((v) => !fleet.clusters.some((c) => matches(c, v))))];
  if (unknown.length) {
    const tags = [...new Set(fleet.clusters.flatMap((c) => c.tags))].sort();
    const selected = fleet.clusters.filter((c) => only.some((v) => matches(c, v)));
    throw usageError(
      `--only ${unknown.map((v) => `"${v}"`).join(', ')}: no cluster in ${fleet.file} has that tag or name` +
        (selected.length ? '' : ', so nothing is selected'),
      `known tags: ${tags.length ? tags.join(', ') : '(none)'}; clusters: ${fleet.clusters.map((c) => c.name).join(', ')}`,
    );
  }
  return fleet.clusters.filter((c) => only.some((v) => matches(c, v)));
}
