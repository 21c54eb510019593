// Which format to read, and whether the server logs what the reader needs: the address (csvlog
// and jsonlog always; stderr with %h or %r in log_line_prefix, or by pairing with the
// `connection received` line, which needs log_connections: `on` up to 17, a list holding
// `receipt` (or `all`) from 18).
import { compilePrefix } from './prefix.js';
import type { LogFormat } from './record.js';

const PREFERENCE: LogFormat[] = ['csvlog', 'jsonlog', 'stderr'];

/** log_destination's formats this reader can read, best first (csvlog, jsonlog, stderr; syslog and eventlog are not files). */
export function formatsOf(logDestination: string): LogFormat[] {
  const given = new Set(logDestination.split(',').map((s) => s.trim().toLowerCase()));
  return PREFERENCE.filter((f) => given.has(f));
}

/** The format a log file's name says: PostgreSQL names the csvlog and jsonlog files `.csv` and `.json`. */
export function formatOfName(file: string): LogFormat {
  if (file.endsWith('.csv')) return 'csvlog';
  if (file.endsWith('.json')) return 'jsonlog';
  return 'stderr';
}

/** The format of a file's first complete line, for a file whose name does not say. */
export function sniffFormat(firstLine: string): LogFormat {
  if (firstLine.startsWith('{"timestamp":')) return 'jsonlog';
  if (/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [^, ]+,/.test(firstLine)) return 'csvlog';
  return 'stderr';
}

/** Whether log_connections logs `connection received` (the line stderr pairing needs). */
export function logsReceipt(logConnections: string): boolean {
  const items = logConnections
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  // up to 17 a boolean; from 18 also a list (receipt, authentication, authorization, setup_durations, all)
  return items.some((v) => ['on', 'true', 'yes', '1', 'receipt', 'all'].includes(v));
}

/** What a stderr log with this prefix can tell, and what to turn on when it cannot. */
export function stderrGaps(prefix: string, logConnections: string | null): string[] {
  const escapes = compilePrefix(prefix).escapes;
  const gaps: string[] = [];
  if (!escapes.has('p'))
    gaps.push('log_line_prefix has no %p: a DETAIL line cannot be tied to its FATAL line, nor a failure to its connection');
  if (!escapes.has('h') && !escapes.has('r') && logConnections !== null && !logsReceipt(logConnections))
    gaps.push(
      "log_line_prefix has no %h and log_connections does not log `connection received`: failures other than pg_hba.conf's carry no client address; add %h to log_line_prefix, or set log_connections = on (18: a list holding 'receipt')",
    );
  if (!escapes.has('m') && !escapes.has('t')) gaps.push('log_line_prefix has no %m or %t: failures are timed when read, not when logged');
  return gaps;
}
