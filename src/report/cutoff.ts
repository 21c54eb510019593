// Renderers over one cutoff report: the text the operator watches and the markdown for the ticket
// (written through src/record/safe-write.ts). Its audit lines are a record: src/record/cutoff-audit.ts.
import { Chalk, type ChalkInstance } from 'chalk';
import type { CutoffReport, ReportStep } from '../record/cutoff-report.js';
import type { FleetCutoffReport, NodeOutcome } from '../record/fleet-report.js';
import type { Plan } from '../playbook/model.js';
import { mdRefusedLogins, renderRefusedLogins } from './failed-logins.js';
import { nodeHeading, renderFindings, shownName, table, truncate, type Column } from './format.js';
import { renderPgbouncer } from './pgbouncer.js';

export const EXIT_MEANING: Record<number, string> = {
  0: 'contained and verified',
  1: 'the playbook ran, but exposure remains',
  2: 'nothing was changed',
  3: 'a step failed or was interrupted partway: see the steps',
};

function statusLabel(st: ReportStep['status'], c: ChalkInstance): string {
  const label = st.toUpperCase().padEnd(7);
  switch (st) {
    case 'done':
      return c.green(label);
    case 'failed':
      return c.red.bold(label);
    case 'skipped':
      return c.yellow(label);
    default:
      return c.cyan(label);
  }
}

function where(st: Pick<ReportStep, 'database' | 'role'>): string {
  const parts = [
    st.role !== null ? `role ${shownName(st.role)}` : null,
    st.database !== null ? `db ${shownName(st.database)}` : null,
  ].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

function indent(text: string, by = '      '): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

/** The plan as the operator confirms it (and as --dry-run shows it): every step with its SQL. */
export function renderPlan(plan: Plan, c: ChalkInstance): string {
  const out: string[] = [];
  out.push(
    `${c.bold('Cutoff plan')} ${plan.playbook.name} on ${plan.node} (PostgreSQL ${plan.server.major}), operator ${plan.operator.user}${plan.operator.superuser ? ' (superuser)' : ''}`,
  );
  out.push(
    `roles: ${plan.roles.map((r) => `${shownName(r.name)} (oid ${r.oid}${r.before.superuser ? ', superuser' : ''}${r.included ? `, administered by ${shownName(r.included.administeredBy)}: --include-created` : ''})`).join(', ')}`,
  );
  for (const st of plan.steps) {
    out.push(`${String(st.index + 1).padStart(2)}. ${c.bold(st.action)}${where(st)}${st.skip ? c.yellow(` skipped: ${st.skip}`) : ''}`);
    out.push(c.dim(indent(st.reason, '    ')));
    for (const sql of st.sql) out.push(indent(`${sql};`));
  }
  for (const w of plan.warnings) out.push(c.yellow(`warning: ${w}`));
  for (const e of plan.exposure) out.push(c.red(`left open: ${e}`));
  return out.join('\n');
}

// pid and role stay; role, database, application and query are cut first, then started,
// application, client, database, query, hidden go in that order (see table() in format.ts).
const TERMINATED_COLUMNS: Column[] = [
  { head: 'pid' },
  { head: 'role', shrink: 8 },
  { head: 'database', shrink: 8, drop: 4 },
  { head: 'client', drop: 3 },
  { head: 'application', shrink: 10, cap: 20, drop: 2 },
  { head: 'started', drop: 1 },
  { head: 'hidden', drop: 6 },
  { head: 'query', shrink: 20, cap: 40, drop: 5 },
];

/** A step as it ended: status, action, where and time, then its detail indented below. */
function stepEntry(st: ReportStep, c: ChalkInstance): string[] {
  const ms = st.durationMs === null ? '' : c.dim(` ${st.durationMs} ms`);
  return [`${statusLabel(st.status, c)} ${c.bold(st.action)}${where(st)}${ms}`, ...(st.detail ? [indent(st.detail)] : [])];
}

/** A running step as its spinner names it. */
export function stepRunning(st: ReportStep): string {
  return `${st.action}${where(st)}`;
}

/** What starts a step's result line on a terminal: done, failed, or anything else (skipped). */
export function stepSymbol(st: ReportStep['status'], c: ChalkInstance): string {
  return st === 'done' ? c.green('\u2713') : st === 'failed' ? c.red('\u2717') : c.yellow('\u2013');
}

/**
 * A step's result as the one line that replaces its spinner on a terminal of `width` columns (the
 * symbol before it included): its detail cut to fit. A failure keeps its whole detail below it:
 * the error is what the operator must read.
 */
export function stepResult(st: ReportStep, c: ChalkInstance, width: number): string {
  const [head, ...rest] = stepEntry(st, c);
  if (st.status === 'failed') return [head, ...rest].join('\n');
  // the symbol and its space, two spaces before the detail, and a column spare so that nothing wraps
  const room = width - 2 - stepEntry(st, new Chalk({ level: 0 }))[0]!.length - 2 - 1;
  return st.detail && room >= 10 ? `${head}  ${truncate(st.detail, room)}` : head!;
}

/** `stepsShown`: each step that ran has its result line on the terminal already (stepResult): the report leaves those out. */
export function renderCutoff(r: CutoffReport, c: ChalkInstance, opts: { stepsShown?: boolean } = {}): string {
  const out: string[] = [];
  const title = r.dryRun
    ? c.cyan.bold('DRY RUN')
    : r.exitCode === 0
      ? c.green.bold('CONTAINED')
      : r.exitCode === 1
        ? c.red.bold('EXPOSED')
        : c.red.bold('INCOMPLETE');
  out.push(`${c.bold('Cutoff')} ${r.roles.map((x) => shownName(x.name)).join(', ')} on ${r.node}, playbook ${r.playbook.name}: ${title}`);
  out.push(c.dim(`operator ${r.operator.user} (${r.operator.osUser}@${r.operator.host}); ${r.startedAt} .. ${r.finishedAt ?? '?'}`));
  // steps that never started (skipped by the plan, cut off by an interrupt) had no line of their own
  const steps = opts.stepsShown ? r.steps.filter((st) => st.startedAt === null) : r.steps;
  if (steps.length || !opts.stepsShown) out.push('');
  for (const st of steps) {
    out.push(...stepEntry(st, c));
    if (r.dryRun) for (const sql of st.sql) out.push(indent(`${sql};`, '        '));
  }
  if (r.terminated.length) {
    out.push('');
    out.push(c.bold(`Terminated (${r.terminated.length})`));
    out.push(
      table(
        TERMINATED_COLUMNS,
        r.terminated
          .slice(0, 50)
          .map((t) => [
            t.pid,
            t.role ?? '?',
            t.database,
            t.client ?? 'local',
            t.application,
            t.backendStart?.slice(0, 19),
            t.hidden ? 'yes' : '',
            t.query,
          ]),
        c,
      ),
    );
    if (r.terminated.length > 50) out.push(c.dim(`... and ${r.terminated.length - 50} more (all in the JSON report)`));
  }
  for (const v of r.verification) {
    out.push('');
    out.push(
      `${c.bold('Verification')} ${shownName(v.role)}: ${v.verdict === 'contained' ? c.green.bold('CONTAINED') : c.red.bold('EXPOSED')}`,
    );
    out.push(...renderFindings(v.findings, c));
  }
  out.push(...renderRefusedLogins(r, c));
  if (r.warnings.length) {
    out.push('');
    for (const w of r.warnings) out.push(c.yellow(`warning: ${w}`));
  }
  if (r.exposure.length) {
    out.push('');
    out.push(c.red.bold('Exposure remains:'));
    for (const e of r.exposure) out.push(`  - ${e}`);
  }
  out.push('');
  out.push(
    `exit ${r.exitCode}: ${r.dryRun && r.exitCode === 0 ? 'dry run, nothing was changed' : (EXIT_MEANING[r.exitCode] ?? '')}${r.interrupted ? ' (interrupted)' : ''}`,
  );
  return out.join('\n');
}

function mdCell(v: unknown): string {
  const text = v === null || v === undefined ? '' : String(v);
  return text.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();
}

function mdTable(head: string[], rows: unknown[][]): string[] {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)];
}

/** A bulleted section, or nothing when there are no items. */
function mdList(title: string, items: string[]): string[] {
  return items.length ? ['', `## ${title}`, '', ...items.map((i) => `- ${mdCell(i)}`)] : [];
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');
const loginAndSuperuser = (a: { canLogin: boolean; superuser: boolean }) => `login ${yesNo(a.canLogin)}, superuser ${yesNo(a.superuser)}`;

function mdSummary(r: CutoffReport): string[] {
  const roles = r.roles.map((x) => `\`${x.name.replace(/`/g, "'")}\``).join(', ');
  return [
    `# pgrevoke cutoff: ${roles}${r.dryRun ? ' (dry run)' : ''}`,
    '',
    `- **Outcome:** exit ${r.exitCode}, ${EXIT_MEANING[r.exitCode] ?? ''}${r.interrupted ? ' (interrupted)' : ''}`,
    `- **Node:** ${r.node} (PostgreSQL ${r.server.major})`,
    `- **Playbook:** ${r.playbook.name} (reason: ${r.playbook.reason})`,
    `- **Operator:** ${r.operator.user} as ${r.operator.osUser}@${r.operator.host}`,
    ...(r.reasonText ? [`- **Reason given:** ${mdCell(r.reasonText)}`] : []),
    `- **Started:** ${r.startedAt}; **finished:** ${r.finishedAt ?? '-'}`,
    `- **Sessions terminated:** ${r.terminated.length} (${r.terminated.filter((t) => t.hidden).length} while hidden)`,
  ];
}

/** Each role before and after, with the statement that restores its attributes. */
function mdRoles(r: CutoffReport): string[] {
  const rows = r.roles.map((x) => {
    const v = r.verification.find((y) => y.oid === x.oid);
    const after = v ? (v.after ? loginAndSuperuser(v.after) : 'dropped') : '-';
    return [x.name, x.oid, `${loginAndSuperuser(x.before)}, createrole ${yesNo(x.before.createRole)}`, after, `\`${x.restoreSql}\``];
  });
  return ['', '## Roles', '', ...mdTable(['role', 'oid', 'before', 'after', 'restore (attributes only)'], rows)];
}

function mdSteps(r: CutoffReport): string[] {
  return [
    '',
    '## Steps',
    '',
    ...mdTable(
      ['#', 'action', 'where', 'status', 'ms', 'detail'],
      r.steps.map((s) => [
        s.index + 1,
        s.action,
        [s.role, s.database].filter(Boolean).join(' / '),
        s.status,
        s.durationMs ?? '',
        s.detail ?? '',
      ]),
    ),
  ];
}

function mdTerminated(r: CutoffReport): string[] {
  if (!r.terminated.length) return [];
  return [
    '',
    '## Terminated sessions',
    '',
    ...mdTable(
      ['pid', 'user', 'database', 'client', 'application', 'started', 'hidden', 'query'],
      r.terminated.map((t) => [
        t.pid,
        t.user ?? '?',
        t.database,
        t.client ?? 'local',
        t.application,
        t.backendStart,
        t.hidden ? 'yes' : '',
        truncate(t.query, 80),
      ]),
    ),
  ];
}

function mdVerification(r: CutoffReport): string[] {
  if (!r.verification.length) return [];
  return [
    '',
    '## Verification',
    ...r.verification.flatMap((v) => [
      '',
      `**${mdCell(v.role)}: ${v.verdict}**`,
      ...v.findings.map((f) => `- \`${f.id}\` (${f.severity}${f.exposure ? ', exposure' : ''}): ${mdCell(f.title)}`),
    ]),
  ];
}

/** A ticket summary: what was done, to whom, by whom, when, and what remains. */
export function renderMarkdown(r: CutoffReport): string {
  const out = [
    ...mdSummary(r),
    ...mdRoles(r),
    ...mdSteps(r),
    ...mdTerminated(r),
    ...mdVerification(r),
    ...mdRefusedLogins(r, mdCell),
    ...mdList('Exposure remaining', r.exposure),
    ...mdList('Warnings', r.warnings),
  ];
  return out.join('\n') + '\n';
}

function nodeStatus(o: NodeOutcome, c: ChalkInstance): string {
  const label = o.status.toUpperCase();
  return o.status === 'contained' ? c.green.bold(label) : o.status === 'planned' ? c.cyan(label) : c.red.bold(label);
}

// node, role and status stay; node, cluster, role and error are cut first, then replay wait,
// cluster, terminated go in that order (see table() in format.ts). The markdown takes the headings.
const FLEET_COLUMNS: Column[] = [
  { head: 'node', shrink: 12 },
  { head: 'cluster', shrink: 8, drop: 2 },
  { head: 'role', shrink: 8 },
  { head: 'status' },
  { head: 'terminated', drop: 3 },
  { head: 'replay wait', drop: 1 },
  { head: 'error', shrink: 20 },
];

function fleetRows(r: FleetCutoffReport, paint: (o: NodeOutcome) => string): (string | number)[][] {
  return r.nodes.map((o) => [
    o.node,
    o.cluster ?? '',
    o.role ?? '?',
    paint(o),
    o.report?.terminated.length ?? '',
    o.report?.replay
      ? `${o.report.replay.waitedMs} ms${o.report.replay.caughtUp ? '' : ` (${o.report.replay.lagBytes ?? '?'} bytes behind)`}`
      : '',
    o.error ?? '',
  ]);
}

/** Several nodes: a summary table, then each node's own report. */
export function renderFleet(r: FleetCutoffReport, c: ChalkInstance): string {
  const out: string[] = [];
  out.push(
    `${c.bold('Cutoff')} ${r.roles.map((x) => shownName(x)).join(', ')} on ${r.nodes.length} nodes, playbook ${r.playbook}${r.dryRun ? ` ${c.cyan.bold('DRY RUN')}` : ''}`,
  );
  out.push(
    table(
      FLEET_COLUMNS,
      fleetRows(r, (o) => nodeStatus(o, c)),
      c,
    ),
  );
  for (const o of r.nodes) {
    if (!o.report) continue;
    out.push('');
    out.push(nodeHeading(o, c));
    out.push(renderCutoff(o.report, c));
  }
  for (const s of r.pgbouncer) out.push('', renderPgbouncer(s, c));
  if (r.exposure.length) {
    out.push('');
    out.push(c.red.bold('Not contained:'));
    for (const e of r.exposure) out.push(`  - ${e}`);
  }
  out.push('');
  out.push(`exit ${r.exitCode}: ${r.dryRun && r.exitCode === 0 ? 'dry run, nothing was changed' : (EXIT_MEANING[r.exitCode] ?? '')}`);
  return out.join('\n');
}

export function renderFleetMarkdown(r: FleetCutoffReport): string {
  const out: string[] = [];
  out.push(
    `# pgrevoke cutoff: ${r.roles.map((x) => `\`${x.replace(/`/g, "'")}\``).join(', ')} on ${r.nodes.length} nodes${r.dryRun ? ' (dry run)' : ''}`,
  );
  out.push('');
  out.push(`- **Outcome:** exit ${r.exitCode}, ${EXIT_MEANING[r.exitCode] ?? ''}`);
  out.push(`- **Operator:** ${r.operator.osUser}@${r.operator.host}; **started** ${r.startedAt}, **finished** ${r.finishedAt}`);
  out.push('');
  out.push(
    ...mdTable(
      FLEET_COLUMNS.map((col) => col.head),
      fleetRows(r, (o) => o.status),
    ),
  );
  for (const o of r.nodes) {
    if (!o.report) continue;
    out.push('');
    // each node's summary, one heading level down
    out.push(renderMarkdown(o.report).replace(/^#/gm, '##').trimEnd());
  }
  for (const s of r.pgbouncer) {
    out.push('');
    out.push(`## ${s.node}: ${s.status}${s.error ? ` (${mdCell(s.error)})` : ''}`);
    out.push('');
    if (s.actions.length)
      out.push(
        ...mdTable(
          ['command', 'status', 'detail'],
          s.actions.map((a) => [a.command, a.status, a.detail ?? '']),
        ),
      );
    for (const n of s.notDone) out.push(`- not done: ${mdCell(n)}`);
  }
  return out.join('\n') + '\n';
}
