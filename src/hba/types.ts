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
}

export type HbaOutcome = 'allow' | 'reject' | 'no_match' | 'undecidable';

export interface HbaDecision {
  scenario: HbaScenario;
  outcome: HbaOutcome;
  /** The first matching rule (line number), when decided. */
  line: number | null;
  fileName: string | null;
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
  fileErrors: { line: number; fileName: string | null; error: string }[];
  /** The file changed after the last reload (null: could not tell). */
  reloadPending: boolean | null;
  decisions: HbaDecision[];
  shadowedRejects: ShadowedReject[];
}
