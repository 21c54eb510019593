// pgrevoke restore <role> --from REPORT: undo a cutoff after a false alarm (LOGIN, connection limit,
// stripped attributes, a `sql` step's inverse, the HBA block, a reload). --dry-run shows exactly
// what would run. A report over several nodes is undone node by node (primaries first), each on
// its own connection.
import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { Context, type GlobalOptions } from '../context.js';
import { describeError, ExitCode, usageError } from '../errors.js';
import { resolveTargets } from '../fleet/targets.js';
import { isBlockingHbaError } from '../hba/file-errors.js';
import { confirmEdit, replaceFile, restoreFile, withoutBlock } from '../playbook/hba-file.js';
import { withHbaLock } from '../playbook/hba-lock.js';
import { HBA_ERRORS_SQL } from '../playbook/sql.js';
import { planRestore, readReport, sectionsOf, type ReportSection } from '../playbook/restore.js';
import { strippedBy } from '../playbook/strip-evidence.js';
import { beforeChain, datedInFuture, latestUnrestored, markRestored, readRecords, type CutoffRecordFile } from '../record/journal.js';
import { strippedEarlier as strippedEarlierIn } from '../record/strip-evidence.js';
import { recordSections } from '../record/sections.js';
import { serverOwnerWarning, sharedServerUid } from '../record/server-owner.js';
import { stateDirPath } from '../record/state-dir.js';
import { connect, type Client } from '../pg/connect.js';
import type { ConnParams } from '../pg/conninfo.js';
import { nodeRole, spreadExitCode } from '../pg/nodes.js';
import { findRole } from '../pg/roles.js';
import { collectServer } from '../pg/server.js';
import { redact } from '../pg/redact.js';
import { nodeHeading, shownName } from '../report/format.js';
import { paramsFrom } from './common.js';

export interface RestoreFlags {
  from?: string;
  node?: string;
  dryRun?: boolean;
  yes?: boolean;
  target?: string[];
  fleet?: string;
  only?: string[];
}

interface RestoreStep {
  action: 'alter_role' | 'sql' | 'hba_remove' | 'reload';
  sql: string | null;
  file: string | null;
  /** A `sql` step's inverse: the database it runs in (null: the one connected to). */
  database?: string | null;
  status: 'planned' | 'done' | 'failed' | 'skipped';
  detail: string | null;
  /** hba_remove done: the file written (a link's target) and the backup taken of it before. */
  written?: string;
  backup?: string;
}

/** What restore did (or would do) on one node: the document `--json` prints for a one-node report. */
interface NodeRestore {
  schemaVersion: 1;
  role: string;
  oid: number;
  dryRun: boolean;
  from: string;
  steps: RestoreStep[];
  notes: string[];
  exitCode: ExitCode;
}

interface Job {
  section: ReportSection;
  params: ConnParams;
  client: Client | null;
  restore: NodeRestore | null;
  /** The file change planned with it. */
  hba: { file: string; content: string } | null;
  error: unknown;
}

/** Read-only: connect, check the node is what the section says, plan the steps. */
async function prepare(job: Job, name: string, from: string, dryRun: boolean, trusted: boolean): Promise<void> {
  const client = (job.client = await connect(job.params));
  const { section } = job;
  // a standby's section changes only its HBA; applied to the wrong kind of node it would do the wrong half
  const connected = await nodeRole(client);
  const expected = section.standby ? 'standby' : 'primary';
  if (connected !== expected)
    throw usageError(
      `the report's section ${section.node ? `for ${section.node} ` : ''}is of a ${expected}, but the server connected to is a ${connected}; nothing was changed`,
      `connect to the node the section is for (--dsn, or --target/--fleet naming it), or pass the --node of ${connected === 'standby' ? 'a standby' : 'the primary'}`,
    );
  const recorded = section.systemIdentifier ?? null;
  const here = recorded === null ? null : ((await collectServer(client)).systemIdentifier ?? null);
  if (recorded !== null && here !== null && here !== recorded)
    throw usageError(
      `the record is of another cluster (system identifier ${recorded}; this server's is ${here}); nothing was changed`,
      'connect to the cluster the cutoff ran on, or pass --from the report you mean',
    );
  const current = await findRole(client, name);
  const report = section.source;
  const hbaText = report.hba?.file ? await readFile(report.hba.file, 'utf8').catch(() => null) : null;
  // SUPERUSER/CREATEROLE come back only with evidence from a record in the state directory
  const stripped = trusted ? strippedBy(report, name) || (await strippedEarlierIn(beforeFromOf(report, name), name)) : false;
  const plan = planRestore(report, name, current?.oid ?? null, hbaText, { standby: section.standby, stripped, unbacked: !trusted });
  const steps: RestoreStep[] = [
    ...(plan.alter ? [{ action: 'alter_role', sql: plan.alter, file: null, status: 'planned', detail: null } as RestoreStep] : []),
    ...plan.statements.map((x): RestoreStep => ({
      action: 'sql',
      sql: x.sql,
      file: null,
      database: x.database,
      status: 'planned',
      detail: `in ${JSON.stringify(x.database ?? job.params.database)}: the inverse of cutoff step ${x.step}`,
    })),
    ...(plan.hba
      ? ([
          {
            action: 'hba_remove',
            sql: null,
            file: plan.hba.file,
            status: 'planned',
            detail: `remove the pgrevoke block for ${JSON.stringify(name)}`,
          },
          { action: 'reload', sql: plan.reload, file: null, status: 'planned', detail: 'then check pg_hba_file_rules for error rows' },
        ] as RestoreStep[])
      : []),
  ];
  job.restore = { schemaVersion: 1, role: name, oid: plan.oid, dryRun, from, steps, notes: plan.notes, exitCode: ExitCode.OK };
  job.hba = plan.hba;
}

/** A `sql` step's inverse, each statement on a connection to its database (closed after); a failed one is recorded, the next still run. */
async function applyStatements(job: Job, fail: (s: RestoreStep, err: unknown) => void): Promise<void> {
  const clients = new Map<string, Promise<Client>>();
  try {
    for (const s of job.restore!.steps.filter((x) => x.action === 'sql')) {
      const database = s.database ?? job.params.database;
      try {
        let c = clients.get(database);
        if (!c) clients.set(database, (c = connect(job.params, database)));
        await (await c).query(s.sql!);
        s.status = 'done';
      } catch (err) {
        fail(s, err);
      }
    }
  } finally {
    for (const c of clients.values()) await c.then((x) => x.end()).catch(() => undefined);
  }
}

/** Run the planned steps; a failed one is recorded (exit 3), the next still run. */
async function applySteps(job: Job): Promise<void> {
  const client = job.client!;
  const r = job.restore!;
  const hba = job.hba;
  const fail = (s: RestoreStep, err: unknown) => {
    s.status = 'failed';
    s.detail = redact((err as Error).message);
    r.exitCode = ExitCode.PARTIAL;
  };
  const alter = r.steps.find((s) => s.action === 'alter_role');
  if (alter)
    try {
      await client.query(alter.sql!);
      alter.status = 'done';
    } catch (err) {
      fail(alter, err);
    }
  await applyStatements(job, fail);
  const edit = r.steps.find((s) => s.action === 'hba_remove');
  const reload = r.steps.find((s) => s.action === 'reload');
  if (!hba || !edit || !reload) return;
  try {
    // under the HBA locks, from the file as it is now: the plan's copy may predate another's edit
    await withHbaLock({ params: job.params }, hba.file, async (target) => {
      const next = withoutBlock(await readFile(target, 'utf8'), r.role);
      if (next === null) {
        edit.status = reload.status = 'skipped';
        edit.detail = `no pgrevoke block for ${JSON.stringify(r.role)} in ${target} any more (removed meanwhile, or edited by hand)`;
        return;
      }
      const { backup } = await replaceFile(target, next);
      edit.status = 'done';
      edit.written = target;
      edit.backup = backup;
      edit.detail = `block removed from ${target === hba.file ? target : `${target} (${hba.file} links to it; the link is kept)`}; backup ${backup}`;
      await client.query(reload.sql!);
      const errors = (await client.query<{ line_number: number; error: string }>(HBA_ERRORS_SQL)).rows.filter((x) =>
        isBlockingHbaError(x.error),
      );
      if (errors.length) {
        await restoreFile(target, backup);
        await client.query(reload.sql!);
        throw new Error(
          `pg_hba_file_rules shows errors (${errors.map((e) => `line ${e.line_number}: ${e.error}`).join('; ')}); the backup was put back and reloaded`,
        );
      }
      reload.status = 'done';
      await confirmEdit(target, { removed: [r.role] });
    });
  } catch (err) {
    // reloaded, then the file found with the block again: the removal is what failed
    fail(edit.status === 'done' && reload.status !== 'done' ? reload : edit, err);
  }
}

function renderNode(r: NodeRestore, dryRun: boolean): string[] {
  return [
    `${dryRun ? 'Would restore' : 'Restore of'} ${shownName(r.role)} (oid ${r.oid}) from ${r.from}:`,
    ...r.steps.map(
      (s) =>
        `${(dryRun ? 'PLANNED' : s.status.toUpperCase()).padEnd(8)} ${s.action}: ${s.sql ?? s.file}${s.detail ? `\n         ${s.detail}` : ''}`,
    ),
    ...r.notes.map((n) => `note: ${n}`),
  ];
}

/**
 * Which node each section is restored on: the connection options, or the --target/--fleet node of
 * that name. With --only, the sections of the clusters not selected are left alone (returned).
 */
async function jobsFor(
  f: RestoreFlags,
  g: GlobalOptions,
  file: string,
  fleet: boolean,
  sections: ReportSection[],
): Promise<{ jobs: Job[]; unselected: ReportSection[] }> {
  const job = (section: ReportSection, params: ConnParams): Job => ({
    section,
    params,
    client: null,
    restore: null,
    hba: null,
    error: null,
  });
  const named = Boolean(f.target?.length || f.fleet);
  if (!named) {
    if (sections.length > 1)
      throw usageError(
        `${file} covers ${sections.length} nodes: say where each is`,
        `pass the --fleet file the cutoff used (or a --target per node; nodes are matched by name: ${sections.map((s) => s.node).join(', ')}), or restore one with --node NAME --dsn THAT_NODE`,
      );
    return { jobs: [job(sections[0]!, paramsFrom(g))], unselected: [] };
  }
  const { nodes } = await resolveTargets(f, g, 'pgrevoke');
  if (!fleet && nodes.length === 1) return { jobs: [job(sections[0]!, nodes[0]!.params)], unselected: [] };
  const given = (s: ReportSection) => nodes.some((n) => n.name === s.node);
  const unselected = f.only?.length ? sections.filter((s) => !given(s)) : [];
  const missing = sections.filter((s) => !given(s) && !unselected.includes(s));
  if (missing.length)
    throw usageError(
      `no --target or fleet node named ${missing.map((s) => s.node ?? file).join(', ')}; nothing was changed`,
      `nodes are matched by the names in the report (a --target is named host:port; a fleet node by its name:); the nodes given: ${nodes.map((n) => n.name).join(', ')}`,
    );
  return { jobs: sections.filter(given).map((s) => job(s, nodes.find((n) => n.name === s.node)!.params)), unselected };
}

/**
 * Without --from: the latest record of a cutoff of `name` that no restore has used yet, on the
 * cluster connected to when that can be told (its system identifier).
 */
async function fromRecord(name: string, node: string | undefined, here: string | null, say: (line: string) => void) {
  const records = await readRecords();
  for (const r of records.filter((x) => datedInFuture(x) && x.begin.nodes.some((n) => n.plan.roles.some((p) => p.name === name))))
    say(`pgrevoke: ignoring ${futureLine(r)}`);
  const found = latestUnrestored(records, { role: name, node, ...(here ? { systemIdentifier: here } : {}) });
  if (!found)
    throw usageError(
      `no record of a cutoff of ${shownName(name)}${node ? ` on ${node}` : ''}${here ? ' on this cluster' : ''} that a restore has not used yet (in ${stateDirPath()}); nothing was changed`,
      'pgrevoke history lists the records; or pass --from REPORT',
    );
  const one = found.record.begin.nodes.length === 1;
  return { from: found.record.file, record: found.record, ...recordSections(found.record, one ? undefined : node) };
}

/** A record dated later than now, said in one line: no cutoff on this host wrote it. */
function futureLine(r: CutoffRecordFile): string {
  return `the record ${r.file}: it says it started at ${JSON.stringify(r.begin.startedAt)}, after this host's clock (${new Date().toISOString()}), so no cutoff here wrote it: it may have been planted (pgrevoke history lists the others)`;
}

/** A report as a record closed it: the same document, `record` (the link) left out of both. */
function sameReport(doc: unknown, closing: unknown): boolean {
  const bare = (d: unknown) => (d && typeof d === 'object' ? { ...(d as Record<string, unknown>), record: undefined } : d);
  return closing !== undefined && closing !== null && isDeepStrictEqual(bare(doc), bare(closing));
}

/**
 * --from REPORT: when the report names its record in the state directory, the record is what is
 * restored, and only when that record closed with this very report (any file can name any record,
 * one already restored included); a record dated in the future is refused.
 */
async function fromFile(file: string, node: string | undefined, say: (line: string) => void) {
  const doc = readReport(file);
  const read = sectionsOf(doc, file, node);
  const linked = read.linkedRecord ? (await readRecords()).find((r) => r.file === read.linkedRecord) : undefined;
  if (!linked) return { from: file, record: null, ...read };
  if (datedInFuture(linked)) throw usageError(`refusing ${futureLine(linked)}; nothing was changed`);
  if (!sameReport(doc, linked.end?.report))
    throw usageError(
      `${file} names the record ${linked.file}, but that record did not close with this report (it differs beyond its "record" field); refusing to follow the link, nothing was changed`,
      'pass the file cutoff --report wrote, unedited; or restore without --from, which takes the latest record no restore has used',
    );
  say(`pgrevoke: ${file} names its record: restoring from that, not from the file`);
  return { from: linked.file, record: linked, ...recordSections(linked, linked.begin.nodes.length === 1 ? undefined : node) };
}

/** The system identifier of the cluster the connection options reach (null: not readable, or several nodes named). */
async function clusterHere(f: RestoreFlags, g: GlobalOptions): Promise<string | null> {
  if (f.target?.length || f.fleet) return null;
  const client = await connect(paramsFrom(g));
  try {
    return (await collectServer(client)).systemIdentifier ?? null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Restoring from a record as the server's OS user: anyone who can write server files could have written it. */
async function warnServerOwner(jobs: Job[], say: (line: string) => void): Promise<void> {
  for (const j of jobs) {
    const uid = await sharedServerUid(j.params, j.client);
    if (uid === null) continue;
    say(serverOwnerWarning(uid, stateDirPath()));
    return;
  }
}

const beforeFromOf = (report: { roles: { name: string; beforeFrom?: string | null }[] }, name: string) =>
  report.roles.find((r) => r.name === name)?.beforeFrom ?? null;

function describeRecord(rec: CutoffRecordFile): string {
  const how = rec.end ? `finished with exit ${rec.end.exitCode}` : 'cut short: rebuilt from its plan and the steps it recorded';
  return `the record of the cutoff of ${rec.begin.startedAt} (playbook ${rec.begin.playbook}, ${how}): ${rec.file}`;
}

/** Mark the record restored for each node restored in full, so neither a restore nor a rerun takes it again. */
async function markDone(rec: CutoffRecordFile, jobs: Job[], name: string, say: (line: string) => void): Promise<void> {
  const records = await readRecords();
  for (const j of jobs) {
    if (j.restore?.exitCode !== ExitCode.OK) continue;
    const node = j.section.node ?? rec.begin.nodes[0]!.node;
    // the records a rerun's before-state came from are used up with it
    const earlier = beforeChain(records, beforeFromOf(j.section.source, name), name).map((x) => x.record.file);
    for (const file of [rec.file, ...earlier.filter((f) => f !== rec.file)])
      await markRestored(file, node, name).catch((err: unknown) =>
        say(`pgrevoke: could not mark ${file} as restored: ${(err as Error).message}`),
      );
  }
}

export async function run([role, flags]: unknown[], g: GlobalOptions): Promise<ExitCode> {
  return restoreRole(String(role), flags as RestoreFlags, g, new Context(g));
}

/**
 * The restore command as a function (pgrevoke serve's on_reactivate: restore calls it with --yes
 * semantics and a Context whose streams it reads): what `run` does, on `ctx`'s streams.
 */
export async function restoreRole(name: string, f: RestoreFlags, g: GlobalOptions, ctx: Context): Promise<ExitCode> {
  const dryRun = Boolean(f.dryRun);
  const say = (line: string) => ctx.note(line);
  const source = f.from ? await fromFile(f.from, f.node, say) : await fromRecord(name, f.node, await clusterHere(f, g), say);
  if (source.record) ctx.note(`pgrevoke: restoring from ${describeRecord(source.record)}`);
  const { from, fleet, sections, untouched } = source;
  if (!dryRun && !f.yes && !ctx.interactive)
    throw usageError(
      'refusing to restore without confirmation: there is no terminal to ask on, and nothing was changed',
      'pass --yes, or --dry-run',
    );
  const { jobs, unselected } = await jobsFor(f, g, from, fleet, sections);
  if (jobs.length === 0) throw usageError(`--only selects none of the nodes ${from} covers; nothing was changed`);
  untouched.push(...unselected.map((s) => ({ node: s.node!, why: 'not selected by --only: left as the cutoff left it' })));
  const many = fleet && !f.node;
  try {
    for (const job of jobs) {
      try {
        await prepare(job, name, from, dryRun, source.record !== null);
      } catch (err) {
        if (!many) throw err;
        job.error = err;
      }
    }
    const ready = jobs.filter((j) => j.restore);
    if (source.record) await warnServerOwner(ready, say);
    const heading = (j: Job) =>
      many ? [nodeHeading({ node: j.section.node!, role: j.section.standby ? 'standby' : 'primary' }, ctx.c)] : [];
    if (!dryRun && !f.yes && ready.length) {
      const show = jobs.flatMap((j) => [
        ...heading(j),
        ...(j.restore
          ? [
              ...j.restore.steps.map((s) => `  ${s.action}: ${s.sql ?? `edit ${s.file}`}${s.detail ? `  -- ${s.detail}` : ''}`),
              ...j.restore.notes.map((n) => `  note: ${n}`),
            ]
          : [`  not restored: ${describeError(j.error)}`]),
      ]);
      ctx.note(`Restore ${shownName(name)} from ${from}:\n${show.join('\n')}`);
      const { confirm } = await import('@inquirer/prompts');
      const where = many ? ` on ${ready.length} nodes` : '';
      const ok = await confirm({ message: `Apply${where}?`, default: false }, { output: process.stderr }).catch(() => false);
      if (!ok) {
        ctx.note('pgrevoke: not confirmed; nothing was changed');
        return ExitCode.USAGE;
      }
    }
    if (!dryRun) for (const job of ready) await applySteps(job);
    if (!dryRun && source.record) await markDone(source.record, ready, name, (l) => ctx.note(l));

    if (!many) {
      const r = jobs[0]!.restore!;
      if (ctx.json) ctx.printJson(r);
      else ctx.out(renderNode(r, dryRun).join('\n'));
      return r.exitCode;
    }
    const nodes = jobs.map((j) => ({
      node: j.section.node!,
      role: j.section.standby ? ('standby' as const) : ('primary' as const),
      status: j.error ? 'failed' : j.restore!.exitCode === ExitCode.OK ? (dryRun ? 'planned' : 'restored') : 'partial',
      error: j.error ? describeError(j.error) : null,
      restore: j.restore,
    }));
    const exitCode =
      spreadExitCode(nodes.map((n) => (n.status === 'failed' ? 'failed' : n.status === 'partial' ? 'partial' : 'done'))) ?? ExitCode.OK;
    if (ctx.json) ctx.printJson({ schemaVersion: 1, kind: 'fleet', role: name, from, dryRun, nodes, untouched, exitCode });
    else {
      const out: string[] = [];
      for (const [i, n] of nodes.entries())
        out.push(...heading(jobs[i]!), ...(n.restore ? renderNode(n.restore, dryRun) : [ctx.c.red(`not restored: ${n.error}`)]), '');
      for (const u of untouched) out.push(`${u.node}: ${u.why}`);
      ctx.out(out.join('\n').trimEnd());
    }
    return exitCode as ExitCode;
  } finally {
    await Promise.all(jobs.map((j) => j.client?.end().catch(() => undefined)));
  }
}
