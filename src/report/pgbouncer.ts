// PgBouncer sections as text: the role's pooled clients and the servers behind them, the findings,
// and for a cutoff each console command with its status and what could not be done.
import type { ChalkInstance } from 'chalk';
import type { PgbouncerSection } from '../pgbouncer/section.js';
import { renderFindings, table, type Column } from './format.js';

// client stays, user and database are cut first; then state, then server pid, go (see table() in format.ts).
const CLIENT_COLUMNS: Column[] = [
  { head: 'client' },
  { head: 'user', shrink: 8 },
  { head: 'database', shrink: 8 },
  { head: 'state', drop: 1 },
  { head: 'server pid', drop: 2 },
];

export function renderPgbouncer(s: PgbouncerSection, c: ChalkInstance): string {
  const out: string[] = [c.bold(`== ${s.node}${s.cluster ? ` (cluster ${s.cluster})` : ''} ==`)];
  if (!s.inspection) {
    out.push(c.red(`unreachable: ${s.error ?? ''}`));
    return out.join('\n');
  }
  const i = s.inspection;
  out.push(c.dim(i.version.text));
  out.push(
    i.clients.length
      ? table(
          CLIENT_COLUMNS,
          i.clients.map((cl) => [
            `${cl.addr ?? '?'}:${cl.port ?? '?'}`,
            cl.user,
            cl.database,
            cl.state,
            i.servers.find((sv) => cl.link !== null && sv.ptr === cl.link)?.remotePid ?? '',
          ]),
          c,
        )
      : 'no pooled client of the role',
  );
  out.push(...renderFindings(i.findings, c));
  for (const a of s.actions) out.push(`${a.status.toUpperCase().padEnd(7)} ${a.command}${a.detail ? c.dim(`: ${a.detail}`) : ''}`);
  for (const n of s.notDone) out.push(c.yellow(`not done: ${n}`));
  return out.join('\n');
}
