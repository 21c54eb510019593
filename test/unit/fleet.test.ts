// The fleet file and target resolution: --fleet FILE (clusters, nodes by DSN or service, tags,
// PgBouncer consoles), --only TAG, --target and --pgbouncer. Every invalid fleet is exit 2 naming
// the file, the line and the field, and no error ever carries a password.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFleet, parseFleet, selectClusters, type Fleet } from '../../src/fleet/file.js';
import { targetsFrom, type TargetOptions } from '../../src/fleet/targets.js';
import { usage } from '../helpers/errors.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-fleet-'));
const savedEnv = { PGSERVICEFILE: process.env.PGSERVICEFILE, PGSERVICE: process.env.PGSERVICE };

// set at load time: describe blocks below parse the example while the tests are collected
const services = path.join(dir, 'pg_service.conf');
writeFileSync(services, '[billing-dr]\nhost=10.9.0.1\nport=6000\nuser=dr\n');
process.env.PGSERVICEFILE = services;
delete process.env.PGSERVICE;

afterAll(() => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(dir, { recursive: true, force: true });
});

const EXAMPLE = `clusters:
  - name: billing
    tags: [prod, eu]
    nodes:
      - postgresql://admin@10.0.0.1:5432/postgres     # a plain string is a DSN
      - dsn: host=10.0.0.2 port=5432 user=admin
        name: billing-replica
      - service: billing-dr
    pgbouncer:
      - postgresql://pgbouncer@10.0.0.5:6432/pgbouncer
  - name: search
    tags: [prod, us]
    nodes:
      - host=10.1.0.1 port=5433
  - name: staging
    nodes:
      - host=10.2.0.1
`;

function fleetFile(text: string, name = 'fleet.yaml'): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

const invalid = (text: string) => usage(() => parseFleet(text, 'f.yaml'));

describe('parseFleet', () => {
  it('reads clusters, tags, nodes by DSN string, dsn:/name: mapping and service:, and PgBouncer consoles', () => {
    const fleet = parseFleet(EXAMPLE, 'f.yaml');
    expect(fleet.file).toBe('f.yaml');
    expect(fleet.clusters.map((c) => [c.name, c.tags, c.nodes.length, c.pgbouncer])).toEqual([
      ['billing', ['prod', 'eu'], 3, ['postgresql://pgbouncer@10.0.0.5:6432/pgbouncer']],
      ['search', ['prod', 'us'], 1, []],
      ['staging', [], 1, []],
    ]);
    expect(fleet.clusters[0]!.nodes).toEqual([
      {
        dsn: 'postgresql://admin@10.0.0.1:5432/postgres',
        service: null,
        name: null,
        conninfo: 'postgresql://admin@10.0.0.1:5432/postgres',
      },
      { dsn: 'host=10.0.0.2 port=5432 user=admin', service: null, name: 'billing-replica', conninfo: 'host=10.0.0.2 port=5432 user=admin' },
      { dsn: null, service: 'billing-dr', name: null, conninfo: "service='billing-dr'" },
    ]);
  });

  it('an unknown key is refused with its line and field path, at every level', () => {
    expect(invalid('clusters:\n  - name: a\n    nodes: [host=a]\n    tag: [prod]\n').message).toBe(
      'invalid fleet f.yaml:4: clusters[0].tag: unknown field "tag"',
    );
    expect(invalid('clusters:\n  - name: a\n    nodes:\n      - dsn: host=a\n        hots: b\n').message).toBe(
      'invalid fleet f.yaml:5: clusters[0].nodes[0].hots: unknown field "hots"',
    );
    expect(invalid('cluster:\n  - name: a\n').message).toBe('invalid fleet f.yaml:1: cluster: unknown field "cluster"');
  });

  it('a node has exactly one of dsn and service', () => {
    const both = invalid('clusters:\n  - name: a\n    nodes:\n      - dsn: host=a\n        service: s\n');
    expect(both.message).toBe('invalid fleet f.yaml:5: clusters[0].nodes[0].service: a node has dsn: or service:, not both');
    const neither = invalid('clusters:\n  - name: a\n    nodes:\n      - host=a\n      - name: b\n');
    expect(neither.message).toBe('invalid fleet f.yaml:5: clusters[0].nodes[1]: a node needs dsn: or service:');
    expect(invalid('clusters:\n  - name: a\n    nodes:\n      - 5432\n').message).toBe(
      'invalid fleet f.yaml:4: clusters[0].nodes[0]: a node is a DSN string or a mapping with dsn: or service:',
    );
  });

  it('cluster names: present, non-empty, no spaces, unique', () => {
    expect(invalid('clusters:\n  - nodes: [host=a]\n').message).toMatch(/^invalid fleet f\.yaml:2: clusters\[0\]\.name: /);
    expect(invalid('clusters:\n  - name: ""\n    nodes: [host=a]\n').message).toBe(
      'invalid fleet f.yaml:2: clusters[0].name: must not be empty',
    );
    expect(invalid('clusters:\n  - name: a b\n    nodes: [host=a]\n').message).toBe('invalid fleet f.yaml:2: clusters[0].name: no spaces');
    const dup = invalid('clusters:\n  - name: a\n    nodes: [host=a]\n  - name: a\n    nodes: [host=b]\n');
    expect(dup.message).toBe('invalid fleet f.yaml:4: clusters[1].name: cluster "a" is already clusters[0]: cluster names are unique');
  });

  it('a fleet needs clusters, a cluster needs nodes', () => {
    expect(invalid('clusters: []\n').message).toBe('invalid fleet f.yaml:1: clusters: a fleet needs at least one cluster');
    expect(invalid('clusters:\n  - name: a\n    nodes: []\n').message).toBe(
      'invalid fleet f.yaml:3: clusters[0].nodes: a cluster needs at least one node',
    );
    expect(invalid('').message).toMatch(/^invalid fleet f\.yaml: \(top level\): /);
  });

  it('YAML errors, duplicate keys included, name their line', () => {
    expect(invalid('clusters:\n  - name: a\n    name: b\n    nodes: [host=a]\n').message).toMatch(/^invalid fleet f\.yaml:3: YAML: /);
    expect(invalid('clusters:\n  - name: [a\n').message).toMatch(/^invalid fleet f\.yaml:\d+: YAML: /);
  });

  it('node names (name:, else host:port) are unique across the fleet', () => {
    const byLabel = invalid('clusters:\n  - name: a\n    nodes: [host=h port=1]\n  - name: b\n    nodes:\n      - postgresql://h:1/x\n');
    expect(byLabel.message).toBe(
      'invalid fleet f.yaml:6: clusters[1].nodes[0]: cluster "b", node #1: node name "h:1" is already clusters[0].nodes[0]',
    );
    expect(byLabel.hint).toContain('give one of them a name:');
    const byName = invalid(
      'clusters:\n  - name: a\n    nodes:\n      - {dsn: host=h1, name: n1}\n      - dsn: host=h2\n        name: n1\n',
    );
    expect(byName.message).toBe(
      'invalid fleet f.yaml:6: clusters[0].nodes[1].name: cluster "a", node "n1": node name "n1" is already clusters[0].nodes[0]',
    );
    // the same host:port twice is fine when each has its own name
    expect(
      parseFleet('clusters:\n  - name: a\n    nodes:\n      - {dsn: host=h, name: x}\n      - {dsn: host=h, name: y}\n', 'f').clusters,
    ).toHaveLength(1);
  });

  it('a DSN is resolved: a bad one names the line, the field and the cluster/node', () => {
    expect(invalid('clusters:\n  - name: a\n    nodes:\n      - host=h port=notaport\n').message).toBe(
      'invalid fleet f.yaml:4: clusters[0].nodes[0]: cluster "a", node #1: invalid port in the connection string: "notaport": an integer from 1 to 65535',
    );
    expect(invalid('clusters:\n  - name: a\n    nodes:\n      - dsn: host=h bogus=1\n        name: n\n').message).toBe(
      'invalid fleet f.yaml:4: clusters[0].nodes[0].dsn: cluster "a", node "n": invalid connection option "bogus"',
    );
    const bouncer = invalid('clusters:\n  - name: a\n    nodes: [host=h]\n    pgbouncer:\n      - host=b port=x\n');
    expect(bouncer.message).toBe(
      'invalid fleet f.yaml:5: clusters[0].pgbouncer[0]: cluster "a", pgbouncer #1: invalid port in the connection string: "x": an integer from 1 to 65535',
    );
  });

  it('a service: entry is looked up in PGSERVICEFILE; a missing one names the line and where it looked', () => {
    const e = invalid('clusters:\n  - name: a\n    nodes:\n      - service: nope\n');
    expect(e.message).toBe(
      'invalid fleet f.yaml:4: clusters[0].nodes[0].service: cluster "a", node #1: definition of service "nope" not found',
    );
    expect(e.hint).toContain(process.env.PGSERVICEFILE);
    expect(invalid('clusters:\n  - name: a\n    nodes:\n      - service: ""\n').message).toBe(
      'invalid fleet f.yaml:4: clusters[0].nodes[0].service: must not be empty',
    );
  });

  it('passwords never appear in an error, even from a DSN that does not parse', () => {
    const secrets = ['Sup3rS3cret', 'correct', 'horse', 'battery', 'p@ss w0rd'];
    const cases = [
      // a URI with a password and a bad port
      'postgresql://admin:Sup3rS3cret@h:99999/x',
      // a keyword string whose unquoted password has spaces: the parser stops inside it
      'host=h password=correct horse battery',
      // the password before an unknown keyword
      "host=h password='p@ss w0rd' nonsense=1 port=x",
      // a URI that does not parse at all
      'postgresql://admin:Sup3rS3cret@[::1/x',
    ];
    for (const dsn of cases) {
      const e = invalid(`clusters:\n  - name: a\n    nodes:\n      - ${JSON.stringify(dsn)}\n`);
      for (const s of secrets) {
        expect(e.message, dsn).not.toContain(s);
        expect(e.hint ?? '', dsn).not.toContain(s);
      }
      expect(e.message, dsn).toMatch(/^invalid fleet f\.yaml:4: clusters\[0\]\.nodes\[0\]: cluster "a", node #1: /);
    }
  });
});

describe('loadFleet', () => {
  it('reads a file; a missing one is exit 2', () => {
    const file = fleetFile(EXAMPLE);
    expect(loadFleet(file).clusters.map((c) => c.name)).toEqual(['billing', 'search', 'staging']);
    expect(usage(() => loadFleet(path.join(dir, 'missing.yaml'))).message).toBe(`fleet file not found: ${path.join(dir, 'missing.yaml')}`);
  });
});

describe('selectClusters (--only)', () => {
  const fleet: Fleet = parseFleet(EXAMPLE, 'f.yaml');
  const names = (only?: string[]) => selectClusters(fleet, only).map((c) => c.name);

  it('without --only: every cluster', () => {
    expect(names()).toEqual(['billing', 'search', 'staging']);
    expect(names([])).toEqual(['billing', 'search', 'staging']);
  });

  it('a cluster is selected when it has any of the tags or its name is one of the values', () => {
    expect(names(['prod'])).toEqual(['billing', 'search']);
    expect(names(['eu'])).toEqual(['billing']);
    expect(names(['us', 'eu'])).toEqual(['billing', 'search']);
    expect(names(['staging'])).toEqual(['staging']);
    expect(names(['eu', 'staging'])).toEqual(['billing', 'staging']);
  });

  it('an empty selection is exit 2 listing the known tags and clusters', () => {
    const e = usage(() => names(['qa']));
    expect(e.message).toBe('--only "qa": no cluster in f.yaml has that tag or name, so nothing is selected');
    expect(e.hint).toBe('known tags: eu, prod, us; clusters: billing, search, staging');
  });

  it('a value that matches nothing is exit 2 even beside one that does: a typo must not drop a cluster', () => {
    const e = usage(() => names(['prod', 'stagign']));
    expect(e.message).toBe('--only "stagign": no cluster in f.yaml has that tag or name');
    expect(e.hint).toContain('known tags: eu, prod, us');
  });
});

// resolveTargets = targetsFrom after a lazy import of the fleet parser; the same, synchronously
const resolveTargets = (opts: TargetOptions, g: Parameters<typeof targetsFrom>[1], app: string) =>
  targetsFrom(opts, g, app, opts.fleet ? selectClusters(loadFleet(opts.fleet), opts.only) : null);

describe('resolveTargets', () => {
  const file = () => fleetFile(EXAMPLE);
  const view = (r: ReturnType<typeof resolveTargets>) =>
    r.nodes.map((n) => [n.name, n.cluster, n.tags, `${n.params.host}:${n.params.port}`, n.params.user, n.params.database]);

  it('with neither --target nor --fleet: one node from the connection options', () => {
    const g = { dsn: 'postgresql://u@db1:6543/x' };
    const r = resolveTargets({}, g, 'pgrevoke-guard');
    expect(r.pgbouncers).toEqual([]);
    expect(r.nodes).toHaveLength(1);
    expect(r.nodes[0]).toMatchObject({ name: 'db1:6543', cluster: null, tags: [] });
    expect(r.nodes[0]!.params.applicationName).toBe('pgrevoke-guard');
  });

  it('a fleet: every node with its cluster and tags, named by name: or host:port; -U and -d apply to every node', () => {
    const r = resolveTargets({ fleet: file() }, { username: 'ops', dbname: 'postgres' }, 'pgrevoke');
    expect(view(r)).toEqual([
      ['10.0.0.1:5432', 'billing', ['prod', 'eu'], '10.0.0.1:5432', 'ops', 'postgres'],
      ['billing-replica', 'billing', ['prod', 'eu'], '10.0.0.2:5432', 'ops', 'postgres'],
      ['10.9.0.1:6000', 'billing', ['prod', 'eu'], '10.9.0.1:6000', 'ops', 'postgres'],
      ['10.1.0.1:5433', 'search', ['prod', 'us'], '10.1.0.1:5433', 'ops', 'postgres'],
      ['10.2.0.1:5432', 'staging', [], '10.2.0.1:5432', 'ops', 'postgres'],
    ]);
    expect(r.pgbouncers).toEqual([{ dsn: 'postgresql://pgbouncer@10.0.0.5:6432/pgbouncer', cluster: 'billing' }]);
    // without flags each node keeps its DSN's (or service's) user
    expect(
      resolveTargets({ fleet: file() }, {}, 'pgrevoke')
        .nodes.slice(0, 3)
        .map((n) => n.params.user),
    ).toEqual(['admin', 'admin', 'dr']);
  });

  it('--only narrows nodes and PgBouncer consoles to the selected clusters', () => {
    const r = resolveTargets({ fleet: file(), only: ['us', 'staging'] }, {}, 'pgrevoke');
    expect(r.nodes.map((n) => [n.name, n.cluster])).toEqual([
      ['10.1.0.1:5433', 'search'],
      ['10.2.0.1:5432', 'staging'],
    ]);
    expect(r.pgbouncers).toEqual([]);
    expect(usage(() => resolveTargets({ fleet: file(), only: ['nope'] }, {}, 'pgrevoke')).hint).toContain('known tags: eu, prod, us');
  });

  it('--target and --fleet combine: targets first, with cluster null; --pgbouncer consoles have cluster null', () => {
    const r = resolveTargets(
      { target: ['host=10.5.0.1 port=5432'], fleet: file(), only: ['eu'], pgbouncer: ['host=10.5.0.9 port=6432 user=pgbouncer'] },
      { username: 'ops' },
      'pgrevoke',
    );
    expect(r.nodes.map((n) => [n.name, n.cluster])).toEqual([
      ['10.5.0.1:5432', null],
      ['10.0.0.1:5432', 'billing'],
      ['billing-replica', 'billing'],
      ['10.9.0.1:6000', 'billing'],
    ]);
    expect(r.pgbouncers).toEqual([
      { dsn: 'host=10.5.0.9 port=6432 user=pgbouncer', cluster: null },
      { dsn: 'postgresql://pgbouncer@10.0.0.5:6432/pgbouncer', cluster: 'billing' },
    ]);
  });

  it('a --target naming a fleet node twice is refused; so are --only without --fleet and --dsn/--host/--port with either', () => {
    const dup = usage(() => resolveTargets({ target: ['postgresql://x@10.1.0.1:5433/db'], fleet: file() }, {}, 'pgrevoke'));
    expect(dup.message).toBe('node 10.1.0.1:5433 is named twice');
    expect(dup.hint).toContain('name:');
    expect(usage(() => resolveTargets({ only: ['prod'] }, {}, 'pgrevoke')).message).toBe(
      '--only selects clusters from a fleet file: give --fleet FILE',
    );
    expect(usage(() => resolveTargets({ fleet: file() }, { host: 'h' }, 'pgrevoke')).message).toMatch(/^--fleet .*does not combine/);
    expect(usage(() => resolveTargets({ target: ['host=a'], fleet: file() }, { dsn: 'host=b' }, 'pgrevoke')).message).toMatch(
      /^--target .*does not combine/,
    );
  });

  it('a bad --target or --pgbouncer names which one, without its password', () => {
    const t = usage(() => resolveTargets({ target: ['host=a', 'host=b password=correct horse'] }, {}, 'pgrevoke'));
    expect(t.message).toMatch(/^--target #2: /);
    expect(t.message).not.toMatch(/correct|horse/);
    const b = usage(() => resolveTargets({ pgbouncer: ['postgresql://pgb:Sup3rS3cret@h:0/pgbouncer'] }, {}, 'pgrevoke'));
    expect(b.message).toBe('--pgbouncer #1: invalid port in the connection string: "0": an integer from 1 to 65535');
  });

  it('an invalid fleet file surfaces as its own error through resolveTargets', () => {
    const bad = fleetFile('clusters:\n  - name: a\n    nodes: [host=a]\n    colour: red\n', 'bad.yaml');
    expect(usage(() => resolveTargets({ fleet: bad }, {}, 'pgrevoke')).message).toBe(
      `invalid fleet ${bad}:4: clusters[0].colour: unknown field "colour"`,
    );
  });
});
