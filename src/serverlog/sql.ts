// The SQL the log reader runs: settings once, then per poll the current file and the log
// directory's listing in one round trip, and reads. Bytes, not text: pg_read_file() fails on a
// byte sequence invalid in the database encoding, and a client can put one into the log (user
// names are not checked against any encoding), which would stop the reader at that line for good.
import { ident } from '../pg/quote.js';
import { HEAD_BYTES } from './fingerprint.js';

/** What decides the format and how to read it. `log_connections` is text in every major (a list from 18). */
export const SETTINGS_SQL = `SELECT current_setting('log_destination') AS destination,
       current_setting('logging_collector') AS collector,
       current_setting('log_line_prefix') AS prefix,
       current_setting('log_timezone') AS zone,
       current_setting('log_connections') AS connections,
       current_setting('lc_messages') AS messages,
       current_setting('log_hostname') AS hostname,
       current_setting('server_version_num')::int AS version`;

export interface SettingsRow {
  destination: string;
  collector: string;
  prefix: string;
  zone: string;
  connections: string;
  messages: string;
  /** log_hostname: 'on' or 'off'. */
  hostname: string;
  version: number;
}

/**
 * One round trip per poll when nothing rotated: the current file ($1: stderr, csvlog, jsonlog), the
 * log directory's listing (pg_ls_logdir stats each file: current sizes), and for the cursor's file
 * ($2, NULL before the first poll) its first bytes (its identity) and a chunk from the cursor on
 * ($3 offset, $4 length: empty when nothing new).
 */
export const POLL_SQL = `SELECT pg_current_logfile($1) AS current,
       (SELECT coalesce(json_agg(json_build_object('name', name, 'size', size,
                                 'mtime', extract(epoch FROM modification)) ORDER BY modification, name), '[]'::json)
          FROM pg_ls_logdir()) AS files,
       CASE WHEN $2::text IS NOT NULL THEN pg_read_binary_file($2, 0, ${HEAD_BYTES}, true) END AS head,
       CASE WHEN $2::text IS NOT NULL THEN pg_read_binary_file($2, $3::bigint, $4::bigint, true) END AS data`;

export interface PollRow extends ReadRow {
  current: string | null;
  files: Array<{ name: string; size: number; mtime: number }>;
}

/** $1 file, $2 offset, $3 length, $4 head length (0: no head): a chunk, and the file's first bytes for its identity. */
export const READ_SQL = `SELECT pg_read_binary_file($1, $2::bigint, $3::bigint, true) AS data,
       CASE WHEN $4::int > 0 THEN pg_read_binary_file($1, 0, $4::bigint, true) END AS head`;

export interface ReadRow {
  data: Buffer | null;
  head: Buffer | null;
}

/** The grants a role needs to read the log without being superuser (docs/server-log.md). */
export const grantsSql = (role: string): string[] => [
  `GRANT EXECUTE ON FUNCTION pg_current_logfile(text) TO ${ident(role)}`,
  `GRANT EXECUTE ON FUNCTION pg_ls_logdir() TO ${ident(role)}`,
  `GRANT EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint, boolean) TO ${ident(role)}`,
];
