// Human rendering of an inspect report: header and verdict, a table per section, then findings.
// Each section renders to its own lines; renderInspect only puts them in order.
import type { ChalkInstance } from 'chalk';
import { isBlockingHbaError } from '../hba/evaluate.js';
import type { HbaDecision } from '../hba/types.js';
import type { InspectReport } from '../inspect/index.js';
import { renderFailedLogins } from './failed-logins.js';
import { fitText, renderFindings, seconds, shownName, table, type Cell, type Column } from './format.js';

type Row = Cell[];

// Each table's columns, with what a terminal too narrow for it may do (see table() in format.ts):
// `shrink` columns are cut with an ellipsis first, then columns go in their `drop` order (1 first);
// docs/output.md ("Tables on a terminal") lists the same orders.

// login and superuser stay; bypassrls, conn limit, replication, createrole, valid until go in that order.
const ATTRIBUTE_COLUMNS: Column[] = [
  { head: 'login' },
  { head: 'valid until', drop: 5 },
  { head: 'superuser' },
  { head: 'createrole', drop: 4 },
  { head: 'replication', drop: 3 },
  { head: 'bypassrls', drop: 1 },
  { head: 'conn limit', drop: 2 },
];

// direction, role and member stay (the names cut); depth, then admin, go.
const MEMBERSHIP_COLUMNS: Column[] = [
  { head: 'direction' },
  { head: 'role', shrink: 10 },
  { head: 'member', shrink: 10 },
  { head: 'depth', drop: 1 },
  { head: 'admin', drop: 2 },
];

// pid stays; type, wait, started, xact start, application, client, database, state, query go in that order.
const SESSION_COLUMNS: Column[] = [
  { head: 'pid' },
  { head: 'database', shrink: 8, drop: 7 },
  { head: 'client', drop: 6 },
  { head: 'application', shrink: 10, cap: 20, drop: 5 },
  { head: 'type', drop: 1 },
  { head: 'state', drop: 8 },
  { head: 'started', drop: 3 },
  { head: 'xact start', drop: 4 },
  { head: 'wait', shrink: 10, drop: 2 },
  { head: 'query', shrink: 20, cap: 50, drop: 9 },
];

// pid stays; seen via, started, client go in that order.
const HIDDEN_COLUMNS: Column[] = [
  { head: 'pid' },
  { head: 'seen via', drop: 1 },
  { head: 'started', drop: 2 },
  { head: 'client', drop: 3 },
];

// holder and mode stay; type, then database, go; relation is cut.
const LOCK_COLUMNS: Column[] = [
  { head: 'holder', shrink: 12 },
  { head: 'type', drop: 1 },
  { head: 'mode' },
  { head: 'database', shrink: 8, drop: 2 },
  { head: 'relation', shrink: 12 },
];

// blocked pid and blocked by stay; database, waiting, user, query go in that order.
const BLOCKING_COLUMNS: Column[] = [
  { head: 'blocked pid' },
  { head: 'user', shrink: 8, drop: 3 },
  { head: 'database', shrink: 8, drop: 1 },
  { head: 'waiting', drop: 2 },
  { head: 'blocked by', shrink: 12 },
  { head: 'query', shrink: 20, cap: 40, drop: 4 },
];

// gid and database stay (cut); xid, locks, age go in that order.
const PREPARED_COLUMNS: Column[] = [
  { head: 'gid', shrink: 12 },
  { head: 'database', shrink: 8 },
  { head: 'xid', drop: 1 },
  { head: 'age', drop: 3 },
  { head: 'locks', drop: 2 },
];

// outcome and line stay; method, from, databases, connection, note go in that order.
const HBA_COLUMNS: Column[] = [
  { head: 'outcome' },
  { head: 'line' },
  { head: 'method', drop: 1 },
  { head: 'connection', drop: 4 },
  { head: 'databases', shrink: 10, cap: 30, drop: 3 },
  { head: 'from', shrink: 10, cap: 30, drop: 2 },
  { head: 'note', shrink: 20, cap: 50, drop: 5 },
];

// kind and object stay (object cut); active, database, detail go in that order.
const PERSISTENCE_COLUMNS: Column[] = [
  { head: 'kind' },
  { head: 'database', shrink: 8, drop: 2 },
  { head: 'object', shrink: 12, cap: 40 },
  { head: 'active', drop: 1 },
  { head: 'detail', shrink: 20, cap: 50, drop: 3 },
];

function yes(b: boolean): string {
  return b ? 'yes' : 'no';
}

/** The table, or no lines at all when there are no rows; a heading, if any, is the caller's. */
function tableIfAny(head: Column[], rows: Row[], c: ChalkInstance): string[] {
  return rows.length ? [table(head, rows, c)] : [];
}

/** A section shown only when it has rows: its heading, then its table. */
function optionalSection(title: string, head: Column[], rows: Row[], c: ChalkInstance): string[] {
  return rows.length ? [c.bold(title), ...tableIfAny(head, rows, c)] : [];
}

function renderHeader(r: InspectReport, c: ChalkInstance): string[] {
  const verdict = r.verdict === 'exposed' ? c.red.bold('EXPOSED') : c.green.bold('CONTAINED');
  return [
    `${c.bold('Role')} ${shownName(r.role.name)} (oid ${r.role.oid}): ${verdict}`,
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
      ATTRIBUTE_COLUMNS,
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
    MEMBERSHIP_COLUMNS,
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
      SESSION_COLUMNS,
      sessions.map((s) => [
        s.pid,
        s.database,
        s.clientAddr ? `${s.clientAddr}:${s.clientPort}` : 'local',
        s.applicationName,
        s.backendType,
        s.state,
        s.backendStart?.slice(0, 19),
        s.xactStart?.slice(11, 19),
        s.waitEvent ? `${s.waitEventType}:${s.waitEvent}` : '',
        s.query,
      ]),
      c,
    ),
  ];
}

function renderHiddenBackends(hidden: InspectReport['hiddenBackends'], c: ChalkInstance): string[] {
  return optionalSection(
    `Hidden backends (${hidden.length}): past authentication, not yet in pg_stat_activity, role unknown`,
    HIDDEN_COLUMNS,
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
      LOCK_COLUMNS,
      granted.slice(0, 30).map((l) => [l.preparedGid ? `prepared '${l.preparedGid}'` : l.pid, l.locktype, l.mode, l.database, l.relation]),
      c,
    ),
  ];
}

function renderBlocking(blocking: InspectReport['blocking'], c: ChalkInstance): string[] {
  return optionalSection(
    `Blocked sessions (${blocking.length})`,
    BLOCKING_COLUMNS,
    blocking.map((b) => [
      b.blockedPid,
      b.blockedUser,
      b.blockedDatabase,
      seconds(b.waitingSeconds),
      b.blockerGid ? `prepared '${b.blockerGid}'` : b.blockerPid,
      b.blockedQuery,
    ]),
    c,
  );
}

function renderPrepared(prepared: InspectReport['preparedTransactions'], c: ChalkInstance): string[] {
  return optionalSection(
    `Prepared transactions (${prepared.length})`,
    PREPARED_COLUMNS,
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
      HBA_COLUMNS,
      groupHbaDecisions(hba.decisions).map((g) => [
        g.outcome === 'allow' ? c.red(g.outcome) : g.outcome,
        g.line,
        g.method,
        g.transport,
        [...g.dbs].join(', '),
        [...g.addrs].join(', '),
        g.reason,
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
      PERSISTENCE_COLUMNS,
      items.map((i) => [i.kind, i.database ?? '(cluster)', i.name, yes(i.active), i.detail]),
      c,
    ),
    ...p.errors.map((e) => c.yellow(`  could not scan ${e.database}: ${e.message}${e.sqlstate ? ` [${e.sqlstate}]` : ''}`)),
  ];
}

export function renderInspect(r: InspectReport, c: ChalkInstance): string {
  // on a terminal, the lines between the tables (titles, notes) wrap at its width as the tables fit it
  const lines = [
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
    ...renderFailedLogins(r.failedLogins, r.failedLoginsUnreadable, c),
    '',
    c.bold(`Findings (${r.findings.length})`),
    ...renderFindings(r.findings, c),
  ];
  return fitText(lines.join('\n'));
}
