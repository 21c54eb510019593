// Who is still knocking, as text: inspect's recent failed logins of the role and the cutoff
// report's logins refused after the cutoff, both by client address (src/inspect/failed-logins.ts).
// A short section of plain lines; the JSON has every address (up to 100 per role).
import type { ChalkInstance } from 'chalk';
import type { FailedLogins, LogReach, RoleKnocks } from '../inspect/failed-logins.js';
import type { CutoffReport } from '../record/cutoff-report.js';
import { shownName } from './format.js';

/** Addresses shown per role; the rest are counted. */
const SHOWN = 10;

/**
 * A time in UTC to the millisecond, `2026-12-01 12:44:09.648Z`, as the cutoff report's own times:
 * the log writes log_timezone's offset and committedAt has the session's, which may differ.
 */
function logTime(iso: string | null): string {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? (iso ?? '?') : new Date(t).toISOString().replace('T', ' ');
}

/** `first .. last`, the date left out of `last` when it is the same. */
function span(first: string | null, last: string | null): string {
  const [a, b] = [logTime(first), logTime(last)];
  return a.slice(0, 11) === b.slice(0, 11) ? `${a} .. ${b.slice(11)}` : `${a} .. ${b}`;
}

/** 8 MiB, 256 KiB. */
const sizeText = (bytes: number) =>
  bytes >= 1024 * 1024 ? `${+(bytes / (1024 * 1024)).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;

/** `password 3, nologin 2`. */
const kindsText = (kinds: RoleKnocks['kinds']) =>
  Object.entries(kinds)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

/** How far back the log was read: the oldest entry, the format, the bound. */
const reachText = (log: LogReach) =>
  `server log read back to ${logTime(log.oldest)} (${log.format}, at most the last ${sizeText(log.lookBackBytes)})`;

/** A role's attempts: first and last, kinds and pg_hba.conf lines, then one line per address. */
function knockLines(k: RoleKnocks, c: ChalkInstance): string[] {
  if (!k.count) return [];
  const lines = k.hbaLines.length ? `; pg_hba.conf line ${k.hbaLines.map((l) => `${l.line} (${l.count})`).join(', ')}` : '';
  return [
    `  ${span(k.first, k.last)}; ${kindsText(k.kinds)}${lines}`,
    ...k.addresses
      .slice(0, SHOWN)
      .map(
        (a) =>
          `  ${(a.address ?? 'local').padEnd(15)} ${String(a.count).padStart(5)}  ${span(a.first, a.last)}  ${kindsText(a.kinds)}${a.hbaLines.length ? `  line ${a.hbaLines.join(', ')}` : ''}`,
      ),
    ...(k.addressCount > SHOWN ? [c.dim(`  ... and ${k.addressCount - SHOWN} more address(es) (in --json, up to 100)`)] : []),
  ];
}

/** inspect: the role's recent failed logins, or the one line saying why the log could not be read. */
export function renderFailedLogins(f: FailedLogins | null, unreadable: string | null, c: ChalkInstance): string[] {
  if (!f) return [`${c.bold('Failed logins')}: server log not readable: ${unreadable ?? 'not read'}`];
  return [
    `${c.bold(`Failed logins (${f.count})`)}: ${reachText(f.log)}`,
    ...knockLines(f, c),
    ...f.warnings.map((w) => c.yellow(`  warning: ${w}`)),
  ];
}

/** cutoff: the targets' logins refused after the cutoff, from the log (nothing for a run that did not read it). */
export function renderRefusedLogins(r: CutoffReport, c: ChalkInstance): string[] {
  const k = r.refusedLogins;
  if (!k)
    return r.refusedLoginsUnreadable ? ['', `${c.bold('Refused logins since the cutoff')}: not read: ${r.refusedLoginsUnreadable}`] : [];
  const total = k.roles.reduce((n, x) => n + x.count, 0);
  const partial = k.complete ? '' : c.yellow(`; it began after the cutoff (${logTime(k.since)}): earlier refusals are not counted`);
  return [
    '',
    `${c.bold(`Refused logins since the cutoff (${total})`)}: from ${logTime(k.since)}; ${reachText(k.log)}${partial}`,
    ...k.roles.flatMap((x) => [...(k.roles.length > 1 ? [`${shownName(x.role)}: ${x.count}`] : []), ...knockLines(x, c)]),
    ...k.warnings.map((w) => c.yellow(`  warning: ${w}`)),
  ];
}

/** The ticket's section: one row per role and address. */
export function mdRefusedLogins(r: CutoffReport, cell: (v: unknown) => string): string[] {
  const k = r.refusedLogins;
  if (!k)
    return r.refusedLoginsUnreadable ? ['', '## Refused logins since the cutoff', '', `Not read: ${cell(r.refusedLoginsUnreadable)}`] : [];
  const rows = k.roles.flatMap((x) =>
    x.addresses.map(
      (a) => `| ${cell(x.role)} | ${a.address ?? 'local'} | ${a.count} | ${a.first} | ${a.last} | ${cell(kindsText(a.kinds))} |`,
    ),
  );
  return [
    '',
    '## Refused logins since the cutoff',
    '',
    `From ${k.since}; ${reachText(k.log)}${k.complete ? '' : '; it began after the cutoff: earlier refusals are not counted'}.`,
    ...(rows.length
      ? ['', '| role | address | count | first | last | kinds |', '|---|---|---|---|---|---|', ...rows]
      : ['', 'None of the role(s) was refused a login since the cutoff.']),
  ];
}
