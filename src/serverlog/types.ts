// What guard learns from the server log (issue 16): authentication failures, as the log reader
// (src/serverlog/) yields them and the lockout engine (src/lockout/) counts them.

/** Why the server refused a login, from the FATAL message (texts per major: src/serverlog/auth-failure.ts). */
export type AuthFailureKind =
  /** 28P01: password authentication failed (wrong password, or no password set). */
  | 'password'
  /** 28000: no pg_hba.conf entry for the host/user/database. */
  | 'no_hba_entry'
  /** 28000: pg_hba.conf rejects the connection (an explicit reject line, ours included). */
  | 'hba_reject'
  /** 28000: the role does not exist (logged as such; the client is told only that authentication failed). */
  | 'role_missing'
  /** 28000: the role is not permitted to log in (NOLOGIN). */
  | 'nologin'
  /** Any other 28000 / 28P01 failure (e.g. certificate, ident, peer). */
  | 'other';

export interface AuthFailure {
  /** When the server logged it, ISO 8601 with offset. */
  at: string;
  /** The user name as the client gave it (also for names that do not exist). */
  user: string;
  /** The database the client asked for, when logged. */
  database: string | null;
  /** The client's address (no port), null for a Unix-socket login or when the log does not say. */
  address: string | null;
  sqlstate: '28P01' | '28000';
  kind: AuthFailureKind;
  /** The FATAL message as logged (terminal-safe before it is shown anywhere). */
  message: string;
  /** 16+: the pg_hba.conf line the connection matched (from the DETAIL), else null. */
  hbaLine: number | null;
  /** The backend pid that logged it. */
  pid: number | null;
}

/** Where a log reader stands: the file and the byte offset of the next unread line. Persisted across restarts. */
export interface LogCursor {
  file: string;
  offset: number;
  /** Identity of the file read (size/mtime/inode as the source can tell), to notice a rotation that reused the name. */
  identity: string | null;
}

/** A source of authentication failures that reads incrementally: each poll returns what was logged since the last. */
export interface AuthFailureSource {
  /** Failures logged since the previous poll (the first poll starts at the cursor given, or at the end of the current file). */
  poll(): Promise<AuthFailure[]>;
  /** The position after the last complete line read. */
  cursor(): LogCursor | null;
  /** What the source reads, for messages: `pg_read_file on db1`, `/var/log/postgresql/postgresql-15-main.log`. */
  describe(): string;
}
