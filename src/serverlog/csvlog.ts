// csvlog entries (every supported major): one CSV record each, fields quoted as PostgreSQL's
// write_csvlog does (a quoted field doubles its quotes and may hold newlines). Columns, 14..18:
// log_time, user_name, database_name, process_id, connection_from, session_id, session_line_num,
// command_tag, session_start_time, virtual_transaction_id, transaction_id, error_severity,
// sql_state_code, message, detail, hint, internal_query, internal_query_pos, context, query,
// query_pos, location, application_name, backend_type, leader_pid, query_id (13 has 24, 14+ 26).
import type { LogRecord } from './record.js';
import type { Unit } from './units.js';

const MIN_COLUMNS = 23;
const MAX_COLUMNS = 40; // a later major may add columns at the end; more than this is no csvlog record

/** The fields of one CSV record, or null when it is not well-formed (a quote where none may be). */
export function csvFields(text: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const close = text.indexOf('"', i);
        if (close < 0) return null;
        value += text.slice(i, close);
        if (text[close + 1] === '"') {
          value += '"';
          i = close + 2;
        } else {
          i = close + 1;
          break;
        }
      }
      fields.push(value);
    } else {
      const comma = text.indexOf(',', i);
      const value = comma < 0 ? text.slice(i) : text.slice(i, comma);
      if (value.includes('"')) return null;
      fields.push(value);
      i = comma < 0 ? text.length : comma;
    }
    if (fields.length > MAX_COLUMNS) return null;
    if (i >= text.length) return fields;
    if (text[i] !== ',') return null;
    i++;
    if (i === text.length) {
      fields.push('');
      return fields;
    }
  }
}

const orNull = (s: string | undefined): string | null => (s === undefined || s === '' ? null : s);

/** `host:port` (csvlog's connection_from) -> host; `[local]` stays as it is. */
export function hostOfConnectionFrom(from: string | null): string | null {
  if (!from) return null;
  if (from === '[local]') return from;
  const colon = from.lastIndexOf(':');
  return colon > 0 && /^\d+$/.test(from.slice(colon + 1)) ? from.slice(0, colon) : from;
}

/** One csvlog record as a LogRecord, or null when it is not one (a torn or foreign line). */
export function csvlogRecord(unit: Unit): LogRecord | null {
  const f = csvFields(unit.bytes.toString('utf8'));
  if (!f || f.length < MIN_COLUMNS) return null;
  const pid = Number(f[3]);
  if (!/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(f[0]!) || !/^[A-Z0-9]+$/.test(f[11]!) || !Number.isInteger(pid)) return null;
  return {
    format: 'csvlog',
    time: f[0]!,
    pid,
    user: orNull(f[1]),
    database: orNull(f[2]),
    remoteHost: hostOfConnectionFrom(orNull(f[4])),
    severity: f[11]!,
    sqlstate: orNull(f[12]),
    message: f[13] ?? '',
    detail: orNull(f[14]),
    offset: unit.offset,
    length: unit.bytes.length,
  };
}
