// Human rendering of an inspect report: header and verdict, a table per section, then findings.
// Each section renders to its own lines; renderInspect only puts them in order.
import type { ChalkInstance } from 'chalk';
import { isBlockingHbaError } from '../hba/evaluate.js';
import type { HbaDecision } from '../hba/types.js';
import type { InspectReport } from '../inspect/index.js';
import { renderFindings, seconds, table, truncate } from './format.js';

type Row = (string | number | null | undefined)[];

function yes(b: boolean): string {
  return b ? 'yes' : 'no';
}

/** The table, or no lines at all when there are no rows; a heading, if any, is the caller's. */
function tableIfAny(head: string[], rows: Row[], c: ChalkInstance): string[] {
  return rows.length ? [table(head, rows, c)] : [];
}

/** A section shown only when it has rows: its heading, then its table. */
function optionalSection(title: string, head: string[], rows: Row[], c: ChalkInstance): string[] {
  return rows.length ? [c.bold(title), ...tableIfAny(head, rows, c)] : [];
}

function renderHeader(r: InspectReport, c: ChalkInstance): string[] {
  const verdict = r.verdict === 'exposed' ? c.red.bold('EXPOSED') : c.green.bold('CONTAINED');
  return [
    `${c.bold('Role')} ${JSON.stringify(r.role.name)} (oid ${r.role.oid}): ${verdict}`,
    c.dim(
      `${r.server.version.split(' on ')[0]}${r.server.inRecovery ? ', standby' : ''}; operator ${r.operator.user}${r.operator.superuser ? ' (superuser)' : ''}`,
    ),
    '',
  ];
}

function renderRoleAttributes(role: InspectReport['role'], c: ChalkInstance): string[] {
  return [
    c.bold('Role attributes'),
    table(
      ['login', 'valid until', 'superuser', 'createrole', 'replication', 'bypassrls', 'conn limit'],
      [
        [
          role.canLogin ? (role.expired ? 'yes (expired)' : 'yes') : 'no',
          role.validUntil ?? '',
          yes(role.superuser),
          yes(role.createRole),
          yes(role.replication),
          yes(role.bypassRls),
          role.connectionLimit,
        ],
      ],
      c,
    ),
  ];
}

function renderMemberships(role: InspectReport['role'], c: ChalkInstance): string[] {
  return optionalSection(
    'Memberships',
    ['direction', 'role', 'member', 'depth', 'admin'],
    [
      ...role.memberOf.map((m) => ['member of', m.role, m.member, m.depth, yes(m.adminOption)]),
      ...role.members.map((m) => ['can act as it', m.role, m.member, m.depth, yes(m.adminOption)]),
    ],
    c,
  );
}

function renderSessions(sessions: InspectReport['sessions'], c: ChalkInstance): string[] {
  return [
    c.bold(`Sessions (${sessions.length})`),
    ...tableIfAny(
      ['pid', 'database', 'client', 'application', 'type', 'state', 'started', 'xact start', 'wait', 'query'],
      sessions.map((s) => [
        s.pid,
        s.database,
        s.clientAddr ? `${s.clientAddr}:${s.clientPort}` : 'local',
        truncate(s.applicationName, 20),
        s.backendType,
        s.state,
        s.backendStart?.slice(0, 19),
        s.xactStart?.slice(11, 19),
        s.waitEvent ? `${s.waitEventType}:${s.waitEvent}` : '',
        truncate(s.query, 50),
      ]),
      c,
    ),
  ];
}

function renderHiddenBackends(hidden: InspectReport['hiddenBackends'], c: ChalkInstance): string[] {
  return optionalSection(
    `Hidden backends (${hidden.length}): past authentication, not yet in pg_stat_activity, role unknown`,
    ['pid', 'seen via', 'started', 'client'],
    hidden.map((h) => [h.pid, h.via, h.backendStart?.slice(0, 19), h.clientAddr]),
    c,
  );
}

function renderLocks(locks: InspectReport['locks'], c: ChalkInstance): string[] {
  if (!locks.length) return [];
  // a backend's own virtualxid / transactionid locks say nothing about what it holds on objects
  const granted = locks.filter((l) => l.granted && l.locktype !== 'virtualxid' && l.locktype !== 'transactionid');
  return [
    c.bold(`Locks held (${granted.length} on objects, ${locks.length} in all)`),
    ...tableIfAny(
      ['holder', 'type', 'mode', 'database', 'relation'],
      granted.slice(0, 30).map((l) => [l.preparedGid ? `prepared '${l.preparedGid}'` : l.pid, l.locktype, l.mode, l.database, l.relation]),
      c,
    ),
  ];
}

function renderBlocking(blocking: InspectReport['blocking'], c: ChalkInstance): string[] {
  return optionalSection(
    `Blocked sessions (${blocking.length})`,
    ['blocked pid', 'user', 'database', 'waiting', 'blocked by', 'query'],
    blocking.map((b) => [
      b.blockedPid,
      b.blockedUser,
      b.blockedDatabase,
      seconds(b.waitingSeconds),
      b.blockerGid ? `prepared '${b.blockerGid}'` : b.blockerPid,
      truncate(b.blockedQuery, 40),
    ]),
    c,
  );
}

function renderPrepared(prepared: InspectReport['preparedTransactions'], c: ChalkInstance): string[] {
  return optionalSection(
    `Prepared transactions (${prepared.length})`,
    ['gid', 'database', 'xid', 'age', 'locks'],
    prepared.map((p) => [p.gid, p.database, p.transaction, seconds(p.ageSeconds), p.locks]),
    c,
  );
}

/** The file's name and state: error lines, and an edit not yet reloaded. */
function hbaNotes(hba: InspectReport['hba'], c: ChalkInstance): string[] {
  const notes = [
    hba.file ? `file ${hba.file}` : null,
    hba.fileErrors.some((e) => isBlockingHbaError(e.error))
      ? c.red(`${hba.fileErrors.length} error line(s): a reload keeps the old rules`)
      : hba.fileErrors.length
        ? c.yellow(`${hba.fileErrors.length} line(s) that can never match`)
        : null,
    hba.reloadPending ? c.yellow('edited since the last reload') : null,
  ].filter(Boolean);
  return notes.length ? [`  ${notes.join('; ')}`] : [];
}

interface HbaGroup {
  outcome: string;
  line: string;
  method: string;
  transport: string;
  dbs: Set<string>;
  addrs: Set<string>;
  reason: string;
}

/** One group per outcome/line/transport/reason, so that many databases do not flood the screen. */
function groupHbaDecisions(decisions: HbaDecision[]): HbaGroup[] {
  const groups = new Map<string, HbaGroup>();
  for (const d of decisions) {
    const transport = d.scenario.transport === 'local' ? 'local' : `host${d.scenario.ssl ? ' ssl' : ' nossl'}`;
    const key = `${d.outcome}|${d.line}|${transport}|${d.reason ?? ''}`;
    const g = groups.get(key) ?? {
      outcome: d.outcome,
      line: d.line === null ? '-' : String(d.line),
      method: d.authMethod ?? '',
      transport,
      dbs: new Set(),
      addrs: new Set(),
      reason: d.reason ?? '',
    };
    g.dbs.add(d.scenario.database);
    if (d.scenario.address) g.addrs.add(d.scenario.address);
    groups.set(key, g);
  }
  return [...groups.values()];
}

function renderHba(hba: InspectReport['hba'], c: ChalkInstance): string[] {
  if (!hba.readable) return [c.bold('pg_hba.conf'), `  unreadable: ${hba.unreadableReason ?? 'no access'}`];
  return [
    c.bold('pg_hba.conf'),
    ...hbaNotes(hba, c),
    table(
      ['outcome', 'line', 'method', 'connection', 'databases', 'from', 'note'],
      groupHbaDecisions(hba.decisions).map((g) => [
        g.outcome === 'allow' ? c.red(g.outcome) : g.outcome,
        g.line,
        g.method,
        g.transport,
        truncate([...g.dbs].join(', '), 30),
        truncate([...g.addrs].join(', '), 30),
        truncate(g.reason, 50),
      ]),
      c,
    ),
  ];
}

function renderPersistence(p: InspectReport['persistence'], c: ChalkInstance): string[] {
  const items = p.items;
  return [
    c.bold(`Persistence (${items.length} item(s) in ${p.databasesScanned.length} database(s) scanned)`),
    ...tableIfAny(
      ['kind', 'database', 'object', 'active', 'detail'],
      items.map((i) => [i.kind, i.database ?? '(cluster)', truncate(i.name, 40), yes(i.active), truncate(i.detail, 50)]),
      c,
    ),
    ...p.errors.map((e) => c.yellow(`  could not scan ${e.database}: ${e.message}${e.sqlstate ? ` [${e.sqlstate}]` : ''}`)),
  ];
}

export function renderInspect(r: InspectReport, c: ChalkInstance): string {
  return [
    ...renderHeader(r, c),
    ...renderRoleAttributes(r.role, c),
    ...renderMemberships(r.role, c),
    ...renderSessions(r.sessions, c),
    ...renderHiddenBackends(r.hiddenBackends, c),
    ...renderLocks(r.locks, c),
    ...renderBlocking(r.blocking, c),
    ...renderPrepared(r.preparedTransactions, c),
    ...renderHba(r.hba, c),
    ...renderPersistence(r.persistence, c),
    '',
    c.bold(`Findings (${r.findings.length})`),
    ...renderFindings(r.findings, c),
  ].join('\n');
}
