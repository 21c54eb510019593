// The audit log: one JSON line per action, appended to a file created 0600. The reason vocabulary
// is shared by every command that ends access (cutoff, kill, guard).
import { promises as fs } from 'node:fs';
import { redact } from '../pg/redact.js';

/** Why access was ended. Stable strings: SIEM rules match on them. */
export const AUDIT_REASONS = [
  'compromise',
  'offboarding',
  'admin_kill',
  'role_nologin',
  'role_dropped',
  'role_expired',
  'denylisted',
  'idle_timeout',
] as const;
export type AuditReason = (typeof AUDIT_REASONS)[number];

export interface AuditOperator {
  dbUser: string;
  osUser: string;
  host: string;
}

export interface AuditEntry {
  time: string;
  node: string;
  operator: AuditOperator;
  /** The role acted on (exact name). */
  target: string;
  action: string;
  reason: AuditReason;
  result: string;
  detail: string | null;
  /** The operator's own words (--reason), when given. */
  note?: string;
}

/** Append entries as JSON lines; the file is created with mode 0600 (it names sessions and queries). */
export async function appendAudit(file: string, entries: readonly AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const text = entries.map((e) => redact(JSON.stringify(e))).join('\n') + '\n';
  const handle = await fs.open(file, 'a', 0o600);
  try {
    await handle.appendFile(text, 'utf8');
  } finally {
    await handle.close();
  }
}
