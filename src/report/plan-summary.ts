// The confirmation's summary: what the cutoff will do, per node, in lines that fit the terminal, so
// that the question is asked with its answer's consequences still on screen (the full SQL is one
// key away). Facts come from the plan and from the read at confirmation (src/playbook/confirm-facts.ts).
import type { ChalkInstance } from 'chalk';
import type { ConfirmFacts, DoomedSession } from '../playbook/confirm-facts.js';
import type { Plan } from '../playbook/model.js';
import type { PgbouncerSection } from '../pgbouncer/section.js';
import { seconds, shownName, truncate } from './format.js';
import { terminalSafe } from '../util/terminal-safe.js';

export interface SummaryNode {
  plan: Plan;
  facts: ConfirmFacts;
}

/** The screen the summary must fit: its width, and the lines it may take (the prompt's are not among them). */
export interface SummarySize {
  columns: number;
  lines: number;
}

/** One line of at most `width` columns, control characters shown as \ufffd: longer ones end in an ellipsis (a terminal would wrap them). */
function clip(text: string, width: number): string {
  const line = terminalSafe(text.replace(/[\t\r\n]+/g, ' '));
  return line.length > width ? `${line.slice(0, Math.max(0, width - 1))}\u2026` : line;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** A list cut to `cap` lines: the last one says how many more when they do not all fit. */
function capped(items: string[], cap: number, more: (n: number) => string): string[] {
  if (items.length <= cap) return items;
  if (cap <= 0) return [];
  return [...items.slice(0, cap - 1), more(items.length - cap + 1)];
}

function client(s: DoomedSession): string {
  if (s.backendType !== 'client backend') return s.backendType;
  return s.clientAddr ? `${s.clientAddr}:${s.clientPort ?? '?'}` : 'local';
}

const STATE: Record<string, string> = { 'idle in transaction': 'in xact', 'idle in transaction (aborted)': 'aborted' };

function sessionRow(s: DoomedSession): string {
  const state = STATE[s.state ?? ''] ?? s.state ?? '';
  const user = truncate(s.user ?? s.role, 12);
  return `    ${String(s.pid).padEnd(7)} ${user.padEnd(12)} ${client(s).padEnd(21)} ${state.padEnd(7)} ${truncate(s.query, 200)}`;
}

/** The query that has run longest among those the cutoff will cut short, or why there is none. */
function longest(f: ConfirmFacts): string {
  const running = f.sessions.filter((s) => s.runningS !== null).sort((a, b) => b.runningS! - a.runningS!);
  const top = running[0];
  if (!top) return f.sessions.length ? 'no query is running now (every session is idle)' : '';
  return `longest-running query cut short: pid ${top.pid}, ${seconds(top.runningS)}: ${truncate(top.query, 200)}`;
}

function pidList(pids: number[]): string {
  return pids.join(', ');
}

function sessionsHead(f: ConfirmFacts): string {
  if (!f.sessions.length) return 'Terminate: no session of the role is open now';
  return `Terminate ${plural(f.sessions.length, 'session')}: pids ${pidList(f.sessions.map((s) => s.pid))}`;
}

function hiddenLine(plan: Plan, f: ConfirmFacts): string {
  if (!f.hidden.length) return 'Hidden backends now: none';
  const settle = plan.steps.some((s) => s.action === 'settle' && !s.skip);
  const then = settle ? `: ended if still hidden ${plan.options.settle.hiddenGraceMs} ms after NOLOGIN` : '';
  return `Hidden backends now: ${f.hidden.length} (pids ${pidList(f.hidden.map((h) => h.pid))})${then}`;
}

function preparedLine(plan: Plan): string {
  const all = plan.steps.filter((s) => s.action === 'rollback_prepared' && s.gid !== undefined);
  const doable = all.filter((s) => !s.skip);
  if (!all.length) return 'Prepared transactions: none';
  const which = doable.map((s) => `'${s.gid}' in ${shownName(s.database ?? '?')}`).join(', ');
  const cannot = all.length - doable.length;
  return `Roll back ${plural(doable.length, 'prepared transaction')}${which ? `: ${which}` : ''}${cannot ? `; ${cannot} cannot be (below)` : ''}`;
}

function blockedLine(f: ConfirmFacts): string {
  if (!f.blocked.length) return 'Blocked by the role now: nobody';
  const who = f.blocked.map(
    (b) => `${b.blockedPid} (${b.blockedUser ?? '?'}) on ${b.blockerGid !== null ? `prepared '${b.blockerGid}'` : `pid ${b.blockerPid}`}`,
  );
  return `Release ${plural(f.blocked.length, 'blocked session')}: ${who.join(', ')}`;
}

function hbaLine(plan: Plan): string {
  const st = plan.steps.find((s) => s.action === 'hba_reject');
  if (!st) return 'pg_hba.conf: not in this playbook (NOLOGIN stops new logins)';
  if (st.skip) return `pg_hba.conf: not edited: ${st.skip}`;
  // the path first: a long one keeps its start when the line is cut
  return `Edit ${st.file ?? '?'}: reject lines on top, reload`;
}

// shown above (or the bookkeeping around them): the rest is listed by action
const SUMMARIZED = new Set(['snapshot', 'contain', 'settle', 'rollback_prepared', 'hba_reject', 'check_locks', 'verify']);

function alsoLine(plan: Plan): string | null {
  const counts = new Map<string, number>();
  for (const s of plan.steps) if (!SUMMARIZED.has(s.action) && !s.skip) counts.set(s.action, (counts.get(s.action) ?? 0) + 1);
  if (!counts.size) return null;
  return `Also: ${[...counts].map(([a, n]) => (n > 1 ? `${a} (${n})` : a)).join(', ')}`;
}

function heading(plan: Plan): string {
  const roles = plan.roles.map(
    (r) =>
      `${shownName(r.name)}${r.before.superuser ? ' (superuser)' : ''}${r.included ? ` (administered by ${shownName(r.included.administeredBy)})` : ''}`,
  );
  const standby = plan.server.inRecovery ? ', standby' : '';
  return `Cutoff ${roles.join(', ')} on ${plan.node} (PostgreSQL ${plan.server.major}${standby})`;
}

function operatorLine(plan: Plan): string {
  return `playbook ${plan.playbook.name}, as ${plan.operator.user}${plan.operator.superuser ? ' (superuser)' : ''}; nothing changed yet`;
}

/** What this operator cannot do and what stays open, then the plan's warnings: one line each. */
function openItems(plan: Plan, consoles: PgbouncerSection[]): { text: string; warn: boolean }[] {
  return [
    ...plan.exposure.map((text) => ({ text, warn: false })),
    ...consoles.flatMap((s) => s.exposure.map((e) => ({ text: `${s.node}: ${e}`, warn: false }))),
    ...plan.warnings.map((text) => ({ text: `warning: ${text}`, warn: true })),
  ];
}

function consoleLine(s: PgbouncerSection): string {
  if (!s.inspection) return `${s.node}: unreachable: ${s.error ?? ''}`;
  const planned = s.actions.filter((a) => a.status === 'planned').map((a) => a.command);
  return `${s.node}: ${planned.length ? planned.join(', ') : 'nothing to run'} (once NOLOGIN has committed)`;
}

/** One node on a screen of its own: every fact, the lists cut so that the whole fits `size`. */
function singleNode(n: SummaryNode, consoles: PgbouncerSection[], c: ChalkInstance, size: SummarySize): string[] {
  const { plan, facts } = n;
  const w = size.columns;
  const rows = facts.sessions.map(sessionRow);
  const open = openItems(plan, consoles);
  const live = facts.error
    ? [c.red(clip(`Could not read the live sessions (the plan stands): ${facts.error}`, w))]
    : [
        clip(sessionsHead(facts), w),
        ...(facts.sessions.length ? [clip(`  ${longest(facts)}`, w)] : []),
        clip(hiddenLine(plan, facts), w),
        clip(blockedLine(facts), w),
      ];
  const fixed = [
    c.bold(clip(heading(plan), w)),
    c.dim(clip(operatorLine(plan), w)),
    ...live,
    clip(preparedLine(plan), w),
    clip(hbaLine(plan), w),
    ...[alsoLine(plan)].filter((l): l is string => l !== null).map((l) => clip(l, w)),
    ...consoles.map((s) => clip(`PgBouncer ${consoleLine(s)}`, w)),
    open.length ? c.red(clip('Not possible here, or stays open:', w)) : c.dim('Stays open: nothing the plan knows of'),
  ];
  let [ks, ko] = [Math.min(rows.length, 5), open.length];
  while (fixed.length + ks + ko > size.lines && (ks > 0 || ko > 1)) {
    if (ko > ks && ko > 1) ko--;
    else if (ks > 0) ks--;
    else ko--;
  }
  const sessionLines = capped(rows, ks, (k) => `    \u2026 and ${k} more`).map((l) => clip(l, w));
  const openLines = capped(
    open.map((o) => (o.warn ? c.yellow(clip(`  - ${o.text}`, w)) : clip(`  - ${o.text}`, w))),
    ko,
    (k) => clip(`  \u2026 and ${k} more (s shows them all)`, w),
  );
  const at = 3; // the session rows go under the "Terminate" line
  return [...fixed.slice(0, at), ...sessionLines, ...fixed.slice(at), ...openLines];
}

/** One node of several: a few lines, the lists left to the full plan. */
function fleetNode(n: SummaryNode, c: ChalkInstance, w: number): string[] {
  const { plan, facts } = n;
  const head = c.bold(clip(`${heading(plan)}, as ${plan.operator.user}${plan.operator.superuser ? ' (superuser)' : ''}`, w));
  const live = facts.error
    ? [c.red(clip(`  could not read the live sessions: ${facts.error}`, w))]
    : [
        clip(`  ${sessionsHead(facts)}`, w),
        ...(facts.sessions.length ? [clip(`    ${longest(facts)}`, w)] : []),
        clip(`  ${hiddenLine(plan, facts)}; ${blockedLine(facts)}`, w),
      ];
  const open = openItems(plan, []);
  return [
    head,
    ...live,
    clip(`  ${preparedLine(plan)}; ${hbaLine(plan)}`, w),
    ...capped(
      open.map((o) => clip(`  - ${o.text}`, w)),
      2,
      (k) => clip(`  \u2026 and ${k} more left open (s shows them all)`, w),
    ).map((l) => c.red(l)),
  ];
}

/** The summary above the question: one node fits `size`; several are a few lines each. */
export function renderPlanSummary(nodes: SummaryNode[], consoles: PgbouncerSection[], c: ChalkInstance, size: SummarySize): string {
  if (nodes.length === 1) return singleNode(nodes[0]!, consoles, c, size).join('\n');
  const out = nodes.flatMap((n) => fleetNode(n, c, size.columns));
  for (const s of consoles) out.push(clip(`PgBouncer ${consoleLine(s)}`, size.columns));
  for (const s of consoles) for (const e of s.exposure) out.push(c.red(clip(`  - ${s.node}: ${e}`, size.columns)));
  return out.join('\n');
}
