// pgrevoke guard's output: one line per event. Kills go to stdout (a human line, or with --json one
// JSON object per line: JSON Lines, the one command whose --json is a stream, not a document);
// status (connected, reconnecting, reloaded, warnings) goes to stderr.
import type { ChalkInstance } from 'chalk';
import { plural } from '../checks/persistence/common.js';
import type { GuardEvent, GuardKill, GuardRollback } from '../guard/types.js';
import type { LockoutEvent } from '../lockout/types.js';
import { shownName, truncate } from './format.js';

export const GUARD_EVENT_VERSION = 1;

/** The events that go to stdout: what the guard did (or would do) to a session or a prepared transaction. */
export type GuardActionEvent = Extract<GuardEvent, { type: 'kill' | 'denied' | 'rollback' }>;

/** A rollback's JSON object: the kill line's fields where they mean the same (role and usesysid: the owner). */
function rollbackJson(r: GuardRollback): Record<string, unknown> {
  return {
    v: GUARD_EVENT_VERSION,
    event: r.dryRun ? 'would_rollback_prepared' : 'rollback_prepared',
    time: r.time,
    node: r.node,
    gid: r.gid,
    role: r.role,
    usesysid: r.usesysid,
    databaseOid: r.databaseOid,
    prepared: r.prepared,
    locks: r.locks,
    reason: r.reason,
    detail: r.detail,
    rolledBack: r.rolledBack,
    dryRun: r.dryRun,
  };
}

/** The JSON Lines object for an action event: `event` is kill, would_kill, denied, rollback_prepared or would_rollback_prepared. */
export function guardJson(e: GuardActionEvent): Record<string, unknown> {
  if (e.type === 'rollback') return rollbackJson(e.rollback);
  const k = e.kill;
  const event = e.type === 'denied' ? 'denied' : k.dryRun ? 'would_kill' : 'kill';
  return {
    v: GUARD_EVENT_VERSION,
    event,
    time: k.time,
    node: k.node,
    pid: k.pid,
    role: k.role,
    usesysid: k.usesysid,
    database: k.database,
    client: k.client,
    application: k.application,
    backendType: k.backendType,
    state: k.state,
    backendStart: k.backendStart,
    reason: k.reason,
    detail: k.detail,
    query: k.query,
    terminated: k.terminated,
    dryRun: k.dryRun,
    ...(e.type === 'denied' ? { error: e.message } : {}),
  };
}

/**
 * A lockout event's JSON object (guard --json, beside the kill lines): `event` is the engine's kind
 * (lockout, reapplied, expired, unlocked, login_kept, failed, cap), `kind` the lockout's (address,
 * role, address_ban; null for a failure or a cap that names none).
 */
export function lockoutJson(e: LockoutEvent): Record<string, unknown> {
  const l = e.lockout;
  return {
    v: GUARD_EVENT_VERSION,
    event: e.event,
    time: e.time,
    node: e.node,
    lockoutId: l?.id ?? null,
    kind: l?.kind ?? null,
    role: l?.role ?? null,
    address: l?.address ?? null,
    count: l?.count ?? null,
    since: l?.since ?? null,
    until: l?.until ?? null,
    nodes: l?.nodes ?? null,
    reason: l?.reason ?? null,
    detail: e.detail,
  };
}

/** A lockout event as a status line: done on a node is info, kept LOGIN and caps are warnings, a failure an error. */
function lockoutStatus(e: LockoutEvent): string {
  const l = e.lockout;
  const what = l ? ` ${l.kind} ${l.role === null ? '*' : shownName(l.role)}${l.address ? ` from ${l.address}` : ''} until ${l.until}` : '';
  const message = `${e.event === 'lockout' ? 'lockout in force' : `lockout ${e.event}`}:${what}${e.detail ? ` (${e.detail})` : ''}`;
  const level = e.event === 'failed' ? 'error: ' : e.event === 'cap' || e.event === 'login_kept' ? 'warning: ' : '';
  return `pgrevoke guard: ${level}${e.node ? `${e.node}: ` : ''}${message}`;
}

// free text (application_name, a gid) as a JSON string; role and database names as SQL identifiers
const q = (s: string | null) => (s === null ? '-' : JSON.stringify(s));
const named = (s: string | null) => (s === null ? '-' : shownName(s));

/** `2026-11-23T20:00:00.123Z 127.0.0.1:5432 kill pid 123 role "x" db "app" app "psql" client ... reason role_nologin (...) query: ...` */
export function guardLine(e: GuardActionEvent, c: ChalkInstance): string {
  if (e.type === 'rollback') {
    const r = e.rollback;
    const verb = r.dryRun ? c.cyan('would-rollback-prepared') : c.red('rollback-prepared');
    const role = r.role === null ? `(dropped, oid ${r.usesysid})` : named(r.role);
    return [r.time, r.node, verb, `gid ${q(r.gid)}`, `role ${role}`, `db oid ${r.databaseOid}`, `reason ${r.reason} (${r.detail})`].join(
      ' ',
    );
  }
  const k: GuardKill = e.kill;
  const verb = e.type === 'denied' ? c.yellow('cannot-kill') : k.dryRun ? c.cyan('would-kill') : c.red('kill');
  const role = k.role === null ? `(dropped, oid ${k.usesysid})` : named(k.role);
  const parts = [
    k.time,
    k.node,
    verb,
    `pid ${k.pid}`,
    `role ${role}`,
    `db ${named(k.database)}`,
    `app ${q(k.application || null)}`,
    `client ${k.client ?? '-'}`,
    `reason ${k.reason} (${k.detail})`,
  ];
  if (e.type === 'denied') parts.push(`error: ${e.message}`);
  parts.push(`query: ${truncate(k.query, 200) || '-'}`);
  return parts.join(' ');
}

/** A stderr line for a status event; null for session events. */
export function guardStatus(e: GuardEvent): string | null {
  const at = (node: string | null) => (node ? `${node}: ` : '');
  switch (e.type) {
    case 'kill':
    case 'denied':
    case 'rollback':
      return null;
    case 'connected':
      return `pgrevoke guard: ${at(e.node)}${e.afterFailures ? 'reconnected' : 'connected'} as ${e.user} (PostgreSQL ${e.version}, ${
        e.standby ? 'standby' : 'primary'
      })`;
    case 'reconnecting':
      return `pgrevoke guard: ${at(e.node)}${e.lost ? 'connection lost' : 'cannot connect'}: ${e.error}; reconnecting in ${e.delayMs} ms (attempt ${e.attempt})`;
    case 'reloaded':
      return `pgrevoke guard: reloaded (${e.source === 'signal' ? 'SIGHUP' : 'deny file changed'}): ${e.deny} role(s) denied${
        e.added.length ? `; added ${e.added.map((n) => shownName(n)).join(', ')}` : ''
      }${e.removed.length ? `; removed ${e.removed.map((n) => shownName(n)).join(', ')}` : ''}`;
    case 'lockout':
      return lockoutStatus(e.lockout);
    case 'warning':
      return `pgrevoke guard: warning: ${at(e.node)}${e.message}`;
    case 'error':
      return `pgrevoke guard: error: ${at(e.node)}${e.message}`;
    case 'info':
      return `pgrevoke guard: ${at(e.node)}${e.message}`;
  }
}

/** What one --once pass saw and did: its closing line, and its JSON object when it did nothing. */
export interface OnceSummary {
  nodesChecked: number;
  nodesFailed: number;
  /** Sessions looked at on the nodes checked (PassResult.sessions). */
  sessionsSeen: number;
  /** Action events printed: kill, would_kill, denied. */
  ended: number;
  wouldEnd: number;
  denied: number;
}

/** `pgrevoke guard: 1 node checked, 4 sessions seen, nothing to do`: without it, a quiet pass said only "connected". */
export function onceSummaryLine(s: OnceSummary): string {
  const failed = s.nodesFailed ? `, ${s.nodesFailed} could not be checked` : '';
  const acted = [
    s.ended ? `${plural(s.ended, 'session')} ended` : '',
    s.wouldEnd ? `${plural(s.wouldEnd, 'session')} would be ended (dry run)` : '',
    s.denied ? `${plural(s.denied, 'session')} could not be ended` : '',
  ].filter(Boolean);
  const outcome = acted.length ? acted.join(', ') : failed ? 'nothing to do on the nodes checked' : 'nothing to do';
  return `pgrevoke guard: ${plural(s.nodesChecked, 'node')} checked${failed}, ${plural(s.sessionsSeen, 'session')} seen, ${outcome}`;
}

/** A pass that printed no action event prints this one object, so that --once --json always says what it checked. */
export function nothingFoundJson(s: OnceSummary, time: string, dryRun: boolean): Record<string, unknown> {
  return {
    v: GUARD_EVENT_VERSION,
    event: 'nothing_found',
    time,
    nodesChecked: s.nodesChecked,
    nodesFailed: s.nodesFailed,
    sessionsSeen: s.sessionsSeen,
    dryRun,
  };
}
