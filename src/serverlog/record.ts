// One server log entry, the same shape whichever format it was read from (csvlog, jsonlog,
// stderr): what auth-failure.ts needs, nothing more. Text fields are as logged (hostile: a client
// chose the user and database names).

export type LogFormat = 'csvlog' | 'jsonlog' | 'stderr';

export interface LogRecord {
  format: LogFormat;
  /** The log time as written (`2026-12-01 14:30:01.145 UTC`), null when the format does not say. */
  time: string | null;
  pid: number | null;
  /** From a structured field (csv/json), or the prefix's %u (stderr: see userCandidates). */
  user: string | null;
  database: string | null;
  /** The client's host as logged (`127.0.0.1`, `[local]`), null when not logged. */
  remoteHost: string | null;
  /** `LOG`, `FATAL`, ... (stderr: the level word before the colon). */
  severity: string;
  /** The SQLSTATE when the format logs it (csv, json, stderr with %e or verbose errors), else null. */
  sqlstate: string | null;
  message: string;
  /** The DETAIL (server log detail), several lines joined with \n. */
  detail: string | null;
  /** Byte offset of the entry's first byte in the file, and its length. */
  offset: number;
  length: number;
  /**
   * stderr only: the entry may be forged (a newline in a client-chosen prefix field such as %u or %d
   * can write a whole fake line; see stderr.ts). No failure is taken from a suspect entry.
   */
  suspect?: boolean;
  /**
   * stderr only: the other ways the same lines can be read. A prefix such as `%u@%d ` with a user
   * `a@b` (or one holding ` FATAL:  `) gives several; auth-failure.ts keeps the reading whose %u is
   * the user the message names.
   */
  alternatives?: LogRecord[];
}
