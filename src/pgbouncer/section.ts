// One PgBouncer console's part of an inspect or cutoff report: what it showed, what was run on it,
// what could not be done and why. A console that cannot be reached is a section, not an exception.
import { describeError } from '../errors.js';
import { stampNode } from '../record/node-stamp.js';
import type { PgbouncerTarget } from '../fleet/targets.js';
import { consoleParams, pgbouncerNodeLabel } from './console.js';
import { applyPgbouncer, planPgbouncer, summarisePgbouncer, type PgbouncerResult } from './cutoff.js';
import { inspectPgbouncer, type PgbouncerInspection } from './inspect.js';

export interface PgbouncerSection {
  /** "pgbouncer host:port" */
  node: string;
  cluster: string | null;
  /** exposed: the role can still reach PostgreSQL through it (shared user, a failed command). */
  status: 'ok' | 'exposed' | 'unreachable';
  error: string | null;
  inspection: PgbouncerInspection | null;
  /** cutoff only: each console command, done / skipped / failed / planned. */
  actions: PgbouncerResult[];
  /** What could not be done, and why; what still holds the role's clients. */
  notDone: string[];
  /** The part of notDone that leaves the role a way in (cutoff only). */
  exposure: string[];
}

function label(t: PgbouncerTarget): string {
  try {
    return pgbouncerNodeLabel(consoleParams(t.dsn));
  } catch {
    return 'pgbouncer (invalid DSN)';
  }
}

function unreachable(t: PgbouncerTarget, err: unknown): PgbouncerSection {
  return {
    node: label(t),
    cluster: t.cluster,
    status: 'unreachable',
    error: describeError(err),
    inspection: null,
    actions: [],
    notDone: [],
    exposure: [],
  };
}

export async function inspectSection(t: PgbouncerTarget, roles: string[]): Promise<PgbouncerSection> {
  try {
    const inspection = await inspectPgbouncer(t.dsn, roles);
    const exposed = inspection.findings.some((f) => f.exposure);
    const section: PgbouncerSection = {
      node: inspection.node,
      cluster: t.cluster,
      status: exposed ? 'exposed' : 'ok',
      error: null,
      inspection,
      actions: [],
      notDone: [],
      exposure: [],
    };
    return stampNode(section, inspection.node);
  } catch (err) {
    return unreachable(t, err);
  }
}

/** Run after NOLOGIN committed on the primaries: a RECONNECT before it would log the role straight back in. */
export async function cutoffSection(
  t: PgbouncerTarget,
  roles: string[],
  opts: { killPool: boolean; dryRun: boolean },
): Promise<PgbouncerSection> {
  let inspection: PgbouncerInspection;
  try {
    inspection = await inspectPgbouncer(t.dsn, roles);
  } catch (err) {
    return unreachable(t, err);
  }
  const actions = await applyPgbouncer(t.dsn, planPgbouncer(inspection, { killPool: opts.killPool }), opts.dryRun);
  const { notDone, exposed, exposure } = summarisePgbouncer(inspection, actions);
  return stampNode(
    { node: inspection.node, cluster: t.cluster, status: exposed ? 'exposed' : 'ok', error: null, inspection, actions, notDone, exposure },
    inspection.node,
  );
}
