// jsonlog entries (PostgreSQL 15+): one JSON object per line, keys left out when null (user and
// dbname before authentication, remote_host for background processes).
import type { LogRecord } from './record.js';
import type { Unit } from './units.js';

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/** One jsonlog line as a LogRecord, or null when it is not one. */
export function jsonlogRecord(unit: Unit): LogRecord | null {
  let o: unknown;
  try {
    o = JSON.parse(unit.bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
  const r = o as Record<string, unknown>;
  const severity = str(r.error_severity);
  if (!severity || typeof r.message !== 'string') return null;
  return {
    format: 'jsonlog',
    time: str(r.timestamp),
    pid: typeof r.pid === 'number' && Number.isInteger(r.pid) ? r.pid : null,
    user: str(r.user),
    database: str(r.dbname),
    remoteHost: str(r.remote_host),
    severity,
    sqlstate: str(r.state_code),
    message: r.message,
    detail: str(r.detail),
    offset: unit.offset,
    length: unit.bytes.length,
  };
}
