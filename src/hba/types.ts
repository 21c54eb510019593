// pg_hba rules as the server reports them, and what first-match evaluation made of them.

export interface HbaRule {
  /** Line in its file. */
  lineNumber: number;
  /** Order tried (PG16+ `rule_number`); for PG<=15 the line order. Null on error rows. */
  ruleNumber: number | null;
  /** PG16+ `file_name` (includes); null before. */
  fileName: string | null;
  /** local, host, hostssl, hostnossl, hostgssenc, hostnogssenc (null on some error rows). */
  type: string | null;
  database: string[];
  userName: string[];
  address: string | null;
  netmask: string | null;
  authMethod: string | null;
  options: string[] | null;
  error: string | null;
  /**
   * Whether each database / user token was quoted in the file (a quoted "all" is a name, not the
   * keyword). Absent when only pg_hba_file_rules was read, which drops the quotes: a keyword-looking
   * token is then undecidable.
   */
  quoted?: { database: boolean[]; userName: boolean[] };
}

/** One kind of connection the role could attempt. */
export interface HbaScenario {
  /** local, host (TCP) */
  transport: 'local' | 'host';
  /** For host: whether the connection is SSL / GSS-encrypted; 'unknown' means both were evaluated. */
  ssl: boolean;
  gss: boolean;
  database: string;
  /** Client address for host connections, e.g. a session's client_addr or a generic remote one. */
  address: string | null;
  /** Why this address: "session 1234", "generic remote IPv4", ... */
  addressLabel: string | null;
  /** A physical replication connection (walsender, database "replication" in the startup packet). */
  replication: boolean;
}

export type HbaOutcome = 'allow' | 'reject' | 'no_match' | 'undecidable';

export interface HbaDecision {
  scenario: HbaScenario;
  /** The role that logs in. */
  user: string;
  /** What a replay sets up: a Unix socket, or TCP with SSL (matches host and hostssl lines) or without (host, hostnossl). */
  connectionType: 'local' | 'hostssl' | 'hostnossl';
  outcome: HbaOutcome;
  /** The first matching rule (line number in its file), when decided; for undecidable, the line that could not be decided. */
  line: number | null;
  /** The file of that line (PG16+ includes; the main file otherwise). */
  fileName: string | null;
  /** PG16+ rule_number of that line (order tried); null before 16 or when only the file was read. */
  ruleNumber: number | null;
  authMethod: string | null;
  /** "undecidable because ..." and similar explanations. */
  reason: string | null;
}

export interface ShadowedReject {
  /** The reject rule that names the role. */
  rejectLine: number;
  /** The earlier rule that matches first. */
  shadowingLine: number;
  shadowingAuthMethod: string | null;
  scenario: HbaScenario;
}

export interface HbaFacts {
  readable: boolean;
  /** Plain words: "permission denied (needs superuser)", "managed service", ... */
  unreadableReason: string | null;
  file: string | null;
  rules: HbaRule[];
  /** Where the quotes of the tokens came from: the file read through the server, the file on this host, or nowhere (view only). */
  rawSource: 'server' | 'local' | null;
  /** Lines where the file as parsed here and pg_hba_file_rules disagree (their tokens were not used). */
  mismatches: { line: number; fileName: string | null; detail: string }[];
  fileErrors: { line: number; fileName: string | null; error: string }[];
  /** The file changed after the last reload (null: could not tell). */
  reloadPending: boolean | null;
  decisions: HbaDecision[];
  shadowedRejects: ShadowedReject[];
}
