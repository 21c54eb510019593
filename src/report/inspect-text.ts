// Human rendering of an inspect report: header and verdict, a table per section, then findings.
import type { ChalkInstance } from 'chalk';
import { isBlockingHbaError } from '../hba/evaluate.js';
import type { InspectReport } from '../inspect/index.js';
import { renderFindings, seconds, table, truncate } from './format.js';

function yes(b: boolean): string {
  return b ? 'yes' : 'no';
}

export function renderInspect(r: InspectReport, c: ChalkInstance): string {
  const out: string[] = [];
  const verdict = r.verdict === 'exposed' ? c.red.bold('EXPOSED') : c.green.bold('CONTAINED');
  out.push(`${c.bold('Role')} ${JSON.stringify(r.role.name)} (oid ${r.role.oid}): ${verdict}`);
  out.push(
    c.dim(
      `${r.server.version.split(' on ')[0]}${r.server.inRecovery ? ', standby' : ''}; operator ${r.operator.user}${r.operator.superuser ? ' (superuser)' : ''}`,
    ),
  );
  out.push('');

  out.push(c.bold('Role attributes'));
  out.push(
    table(
      ['login', 'valid until', 'superuser', 'createrole', 'replication', 'bypassrls', 'conn limit'],
      [
        [
          r.role.canLogin ? (r.role.expired ? 'yes (expired)' : 'yes') : 'no',
          r.role.validUntil ?? '',
          yes(r.role.superuser),
          yes(r.role.createRole),
          yes(r.role.replication),
          yes(r.role.bypassRls),
          r.role.connectionLimit,
        ],
      ],
      c,
    ),
  );
  if (r.role.memberOf.length || r.role.members.length) {
    out.push(c.bold('Memberships'));
    out.push(
      table(
        ['direction', 'role', 'member', 'depth', 'admin'],
        [
          ...r.role.memberOf.map((m) => ['member of', m.role, m.member, m.depth, yes(m.adminOption)]),
          ...r.role.members.map((m) => ['can act as it', m.role, m.member, m.depth, yes(m.adminOption)]),
        ],
        c,
      ),
    );
  }

  out.push(c.bold(`Sessions (${r.sessions.length})`));
  if (r.sessions.length)
    out.push(
      table(
        ['pid', 'database', 'client', 'application', 'type', 'state', 'started', 'xact start', 'wait', 'query'],
        r.sessions.map((s) => [
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
    );
  if (r.hiddenBackends.length) {
    out.push(c.bold(`Hidden backends (${r.hiddenBackends.length}): past authentication, not yet in pg_stat_activity, role unknown`));
    out.push(
      table(
        ['pid', 'seen via', 'started', 'client'],
        r.hiddenBackends.map((h) => [h.pid, h.via, h.backendStart?.slice(0, 19), h.clientAddr]),
        c,
      ),
    );
  }
  if (r.locks.length) {
    const granted = r.locks.filter((l) => l.granted && l.locktype !== 'virtualxid' && l.locktype !== 'transactionid');
    out.push(c.bold(`Locks held (${granted.length} on objects, ${r.locks.length} in all)`));
    if (granted.length)
      out.push(
        table(
          ['holder', 'type', 'mode', 'database', 'relation'],
          granted
            .slice(0, 30)
            .map((l) => [l.preparedGid ? `prepared '${l.preparedGid}'` : l.pid, l.locktype, l.mode, l.database, l.relation]),
          c,
        ),
      );
  }
  if (r.blocking.length) {
    out.push(c.bold(`Blocked sessions (${r.blocking.length})`));
    out.push(
      table(
        ['blocked pid', 'user', 'database', 'waiting', 'blocked by', 'query'],
        r.blocking.map((b) => [
          b.blockedPid,
          b.blockedUser,
          b.blockedDatabase,
          seconds(b.waitingSeconds),
          b.blockerGid ? `prepared '${b.blockerGid}'` : b.blockerPid,
          truncate(b.blockedQuery, 40),
        ]),
        c,
      ),
    );
  }
  if (r.preparedTransactions.length) {
    out.push(c.bold(`Prepared transactions (${r.preparedTransactions.length})`));
    out.push(
      table(
        ['gid', 'database', 'xid', 'age', 'locks'],
        r.preparedTransactions.map((p) => [p.gid, p.database, p.transaction, seconds(p.ageSeconds), p.locks]),
        c,
      ),
    );
  }

  out.push(c.bold('pg_hba.conf'));
  if (!r.hba.readable) out.push(`  unreadable: ${r.hba.unreadableReason ?? 'no access'}`);
  else {
    const notes = [
      r.hba.file ? `file ${r.hba.file}` : null,
      r.hba.fileErrors.some((e) => isBlockingHbaError(e.error))
        ? c.red(`${r.hba.fileErrors.length} error line(s): a reload keeps the old rules`)
        : r.hba.fileErrors.length
          ? c.yellow(`${r.hba.fileErrors.length} line(s) that can never match`)
          : null,
      r.hba.reloadPending ? c.yellow('edited since the last reload') : null,
    ].filter(Boolean);
    if (notes.length) out.push(`  ${notes.join('; ')}`);
    // one row per outcome/line/transport, so that many databases do not flood the screen
    const groups = new Map<
      string,
      { outcome: string; line: string; method: string; transport: string; dbs: Set<string>; addrs: Set<string>; reason: string }
    >();
    for (const d of r.hba.decisions) {
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
    out.push(
      table(
        ['outcome', 'line', 'method', 'connection', 'databases', 'from', 'note'],
        [...groups.values()].map((g) => [
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
    );
  }

  const items = r.persistence.items;
  out.push(c.bold(`Persistence (${items.length} item(s) in ${r.persistence.databasesScanned.length} database(s) scanned)`));
  if (items.length)
    out.push(
      table(
        ['kind', 'database', 'object', 'active', 'detail'],
        items.map((i) => [i.kind, i.database ?? '(cluster)', truncate(i.name, 40), yes(i.active), truncate(i.detail, 50)]),
        c,
      ),
    );
  for (const e of r.persistence.errors)
    out.push(c.yellow(`  could not scan ${e.database}: ${e.message}${e.sqlstate ? ` [${e.sqlstate}]` : ''}`));

  out.push('');
  out.push(c.bold(`Findings (${r.findings.length})`));
  out.push(...renderFindings(r.findings, c));
  return out.join('\n');
}
