// pgrevoke verify <role...> | --roles-file FILE: the CI gate. Exit 0 all contained, 1 any exposed,
// 2 when it could not tell (connection, auth, privilege, unreadable catalog). Never 0 on an error.
import { Context, type GlobalOptions } from '../context.js';
import { ExitCode, usageError } from '../errors.js';
import { shownName, table, truncate, type Column } from '../report/format.js';
import { githubAnnotations, renderJunit } from '../report/junit.js';
import { verifyRoles, VERIFY_SCHEMA_VERSION, type RoleStatus, type RoleVerification, type VerifyReport } from '../verify/index.js';
import { nodeDoneLine, nodesExitCode, runOnNodes, type NodeResult } from '../pg/nodes.js';
import { countFlag } from '../util/flags.js';
import { readRolesFile } from '../util/roles-file.js';
import { resolveTargets } from '../fleet/targets.js';
import { connect } from '../pg/connect.js';
import { checkOutputs, writeFileSafe } from '../record/safe-write.js';

interface VerifyFlags {
  rolesFile?: string;
  strict?: boolean;
  junit?: string;
  probe?: boolean;
  probePasswordEnv?: string;
  target?: string[];
  fleet?: string;
  only?: string[];
  pgbouncer?: string[];
  concurrency?: string;
}

export interface FleetVerifyReport {
  schemaVersion: typeof VERIFY_SCHEMA_VERSION;
  kind: 'fleet';
  strict: boolean;
  /** A role is contained only when it is contained on every node; a node not checked makes it unknown. */
  status: RoleStatus;
  roles: { role: string; status: RoleStatus; nodes: Record<string, RoleStatus> }[];
  nodes: NodeResult<VerifyReport>[];
}

/** One VerifyReport over every node (role names suffixed "@ node"): the JUnit and annotation view. */
function flatten(f: FleetVerifyReport): VerifyReport {
  const roles: RoleVerification[] = f.nodes.flatMap((n) =>
    n.value
      ? n.value.roles.map((r) => ({ ...r, role: `${r.role} @ ${n.node}` }))
      : f.roles.map((r) => ({
          role: `${r.role} @ ${n.node}`,
          exists: false,
          oid: null,
          status: 'unknown' as const,
          checks: [{ name: 'login' as const, status: 'error' as const, message: `node ${n.status}: ${n.error ?? ''}`, remediation: null }],
        })),
  );
  const server = f.nodes.find((n) => n.value)?.value?.server ?? null;
  return { schemaVersion: f.schemaVersion, server: server!, strict: f.strict, status: f.status, roles };
}

function worst(statuses: RoleStatus[]): RoleStatus {
  return statuses.includes('exposed') ? 'exposed' : statuses.includes('unknown') ? 'unknown' : 'contained';
}

function render(report: VerifyReport, ctx: Context): string {
  const paint = (s: string) =>
    s === 'pass' || s === 'contained' ? ctx.c.green(s) : s === 'fail' || s === 'exposed' ? ctx.c.red(s) : ctx.c.yellow(s);
  const names = [...new Set(report.roles.flatMap((r) => r.checks.map((c) => c.name)))];
  const rows = report.roles.map((r) => [
    r.role,
    paint(r.status),
    ...names.map((n) => paint(r.checks.find((c) => c.name === n)?.status ?? '-')),
  ]);
  // role and status stay (the role cut); the check columns go from the last one back (see table() in src/report/format.ts)
  const columns: Column[] = [
    { head: 'role', shrink: 10 },
    { head: 'status' },
    ...names.map((head, i) => ({ head, drop: names.length - i })),
  ];
  const out = [table(columns, rows, ctx.c)];
  for (const r of report.roles)
    for (const c of r.checks.filter((x) => x.status !== 'pass')) {
      out.push(`${paint(c.status === 'fail' ? 'FAIL' : 'ERROR')} ${shownName(r.role)} ${c.name}: ${truncate(c.message, 400)}`);
      if (c.remediation) out.push(`     fix: ${c.remediation}`);
    }
  const n = report.roles.length;
  const exposed = report.roles.filter((r) => r.status === 'exposed').length;
  const unknown = report.roles.filter((r) => r.status === 'unknown').length;
  out.push(`${n} role(s): ${n - exposed - unknown} contained, ${exposed} exposed, ${unknown} undetermined`);
  return out.join('\n');
}

/** The JUnit file, through the one safe writer; a failure (its path was checked first) names the file. */
async function writeJunit(file: string, report: VerifyReport): Promise<void> {
  try {
    await writeFileSafe(file, renderJunit(report));
  } catch (err) {
    throw usageError(`could not write --junit ${file}: ${(err as Error).message}`);
  }
}

export async function run([roleArgs, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  const ctx = new Context(g);
  const f = flags as VerifyFlags;
  const roles = [...((roleArgs as string[] | undefined) ?? [])];
  if (f.rolesFile) roles.push(...readRolesFile(f.rolesFile, 'roles file'));
  if (roles.length === 0) throw usageError('no roles to verify', 'name roles as arguments or pass --roles-file FILE');
  let probePassword: string | undefined;
  if (f.probe) {
    const v = f.probePasswordEnv;
    if (!v)
      throw usageError(
        '--probe needs --probe-password-env VAR',
        'the credential to try comes from an environment variable, never the command line',
      );
    probePassword = process.env[v];
    if (probePassword === undefined)
      throw usageError(`environment variable ${v} is not set`, '--probe tries a real login with the credential in that variable');
  }
  // parsed even when one node makes it unused: a bad number is exit 2 wherever it is given
  const concurrency = countFlag(f.concurrency, '--concurrency', 16);
  await checkOutputs([{ flag: '--junit', file: f.junit }]);
  const targets = (await resolveTargets(f, g, 'pgrevoke')).nodes;
  if (targets.length > 1 || f.fleet) {
    const names = [...new Set(roles)];
    const nodes = await runOnNodes(
      targets,
      concurrency,
      (t, client) => verifyRoles(t.params, client, names, { strict: f.strict, probePassword }),
      // text mode: one line of progress per node as it is done
      (r) => !ctx.json && ctx.note(nodeDoneLine(r, r.value ? `${r.role}, ${r.value.status}` : undefined)),
    );
    const perRole = names.map((role) => {
      const byNode = Object.fromEntries(
        nodes.map((n) => [n.node, n.value?.roles.find((r) => r.role === role)?.status ?? ('unknown' as RoleStatus)]),
      );
      return { role, status: worst(Object.values(byNode)), nodes: byNode };
    });
    const fleet: FleetVerifyReport = {
      schemaVersion: VERIFY_SCHEMA_VERSION,
      kind: 'fleet',
      strict: Boolean(f.strict),
      status: worst(perRole.map((r) => r.status)),
      roles: perRole,
      nodes,
    };
    const flat = flatten(fleet);
    if (f.junit) await writeJunit(f.junit, flat);
    if (process.env.GITHUB_ACTIONS === 'true')
      for (const l of githubAnnotations(flat)) (ctx.json ? ctx.stderr : ctx.stdout).write(`${l}\n`);
    if (ctx.json) ctx.printJson(fleet);
    else {
      ctx.out(render(flat, ctx));
      for (const n of nodes.filter((x) => !x.value)) ctx.out(ctx.c.red(`node ${n.node} not verified (${n.status}): ${n.error ?? ''}`));
    }
    if (fleet.status === 'exposed') return ExitCode.EXPOSED;
    return nodesExitCode(nodes) ?? (fleet.status === 'unknown' ? ExitCode.USAGE : ExitCode.OK);
  }
  const { params } = targets[0]!;
  const client = await connect(params);
  const close = () => client.end().catch(() => undefined);
  try {
    const report = await verifyRoles(params, client, [...new Set(roles)], { strict: f.strict, probePassword });
    if (f.junit) await writeJunit(f.junit, report);
    if (process.env.GITHUB_ACTIONS === 'true') {
      const lines = githubAnnotations(report);
      // workflow commands are read from the job log; keep stdout pure in JSON mode
      for (const l of lines) (ctx.json ? ctx.stderr : ctx.stdout).write(`${l}\n`);
    }
    if (ctx.json) ctx.printJson(report);
    else ctx.out(render(report, ctx));
    return report.status === 'exposed' ? ExitCode.EXPOSED : report.status === 'unknown' ? ExitCode.USAGE : ExitCode.OK;
  } finally {
    await close();
  }
}
