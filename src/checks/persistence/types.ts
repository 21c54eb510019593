// The contract every persistence vector implements: its SQL, a pure row mapper and a pure evaluator.
import type { Finding, PersistenceItem, PersistenceKind } from '../types.js';

/** A result row as the pg driver returns it. */
export type Row = Record<string, unknown>;

export interface PersistenceCheck {
  kind: PersistenceKind;
  /** Stable finding id: `persistence.<kind>`. */
  id: string;
  /** cluster: one query on the main connection; database: one query per scanned database. */
  scope: 'cluster' | 'database';
  /** Read-only SQL; `$1` is always the role OID (a number). */
  sql: string;
  /** Pure: rows of `sql` -> items. `database` is the database the rows were read in (null for cluster scope). */
  toItems(rows: readonly Row[], database: string | null): PersistenceItem[];
  /** Pure: the items of this kind -> findings (none when there are no items). */
  evaluate(items: PersistenceItem[]): Finding[];
}
