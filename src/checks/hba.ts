// pg_hba: collect the rules on disk (pg_hba_file_rules), evaluate them for the role, and turn
// the result into findings. The SQL is read-only; evaluate() is pure.
import {
  describeRule,
  describeScenario,
  evaluateHba,
  isBlockingHbaError,
  orderedRules,
  PASSWORD_METHODS,
  quoteName,
} from '../hba/evaluate.js';
import { mergeWithView, rulesFromLines } from '../hba/raw-rules.js';
import { hbaInexpressible, rejectRules } from '../playbook/hba-file.js';
import type { HbaDecision, HbaFacts, HbaRule } from '../hba/types.js';
import { readRawHba } from './hba-source.js';
import { collectReloadPending } from './hba-reload.js';
import type { Check, Finding, Queryable, RoleFacts, RoleInfo, RoleMemberships, ServerFacts, SessionRow } from './types.js';

/** What the operator may read, asked without raising an error (an error would abort the caller's transaction). */
export const HBA_ACCESS_SQL = `SELECT pg_catalog.has_table_privilege('pg_catalog.pg_hba_file_rules', 'SELECT')
         AND pg_catalog.has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE') AS can_read,
       pg_catalog.has_function_privilege('pg_catalog.pg_stat_file(text)', 'EXECUTE') AS can_stat,
       (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'hba_file') AS hba_file,
       (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'ssl') AS ssl`;

/** PG14/15: no rule_number / file_name (rules are tried in line order, one file). */
export const HBA_RULES_SQL_PG14 = `SELECT line_number, NULL::integer AS rule_number, NULL::text AS file_name, type, database, user_name,
       address, netmask, auth_method, options, error
  FROM pg_catalog.pg_hba_file_rules`;

/** PG16+: rule_number is the order tried; file_name tells included files apart. */
export const HBA_RULES_SQL_PG16 = `SELECT line_number, rule_number, file_name, type, database, user_name,
       address, netmask, auth_method, options, error
  FROM pg_catalog.pg_hba_file_rules`;

export const HBA_UNREADABLE_REASON =
  'permission denied: reading pg_hba_file_rules needs superuser (or managed service without file access)';

export function hbaRulesSql(major: number): string {
  return major >= 16 ? HBA_RULES_SQL_PG16 : HBA_RULES_SQL_PG14;
}

interface AccessRow {
  can_read: boolean;
  can_stat: boolean;
  hba_file: string | null;
  ssl: string | null;
}

interface RuleRow {
  line_number: number;
  rule_number: number | null;
  file_name: string | null;
  type: string | null;
  database: string[] | null;
  user_name: string[] | null;
  address: string | null;
  netmask: string | null;
  auth_method: string | null;
  options: string[] | null;
  error: string | null;
}

export interface HbaCollectContext {
  role: RoleInfo;
  memberships: RoleMemberships;
  server: ServerFacts;
  sessions: SessionRow[];
  databases: string[];
}

function sqlstate(err: unknown): string | null {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

export function ruleFromRow(row: RuleRow): HbaRule {
  return {
    lineNumber: Number(row.line_number),
    ruleNumber: row.rule_number === null ? null : Number(row.rule_number),
    fileName: row.file_name,
    type: row.type,
    database: row.database ?? [],
    userName: row.user_name ?? [],
    address: row.address,
    netmask: row.netmask,
    authMethod: row.auth_method,
    options: row.options,
    error: row.error,
  };
}

/** Distinct client addresses of the role's sessions, labelled with the pids they came from. */
export function sessionAddresses(sessions: SessionRow[]): { address: string; label: string }[] {
  const byAddr = new Map<string, number[]>();
  for (const s of sessions) {
    if (s.clientAddr === null) continue;
    const pids = byAddr.get(s.clientAddr) ?? [];
    pids.push(s.pid);
    byAddr.set(s.clientAddr, pids);
  }
  return [...byAddr].map(([address, pids]) => {
    const shown = pids.slice(0, 3).join(', ');
    const more = pids.length > 3 ? ` and ${pids.length - 3} more` : '';
    return { address, label: `${pids.length === 1 ? 'session' : 'sessions'} ${shown}${more}` };
  });
}

/**
 * Why the decisions may not describe the rules in force, or null when they do.
 * A file with a blocking error is refused as a whole on reload (pg_reload_conf() still returns true);
 * a file edited after the last reload is not in force yet.
 */
export function notInForceCaveat(facts: Pick<HbaFacts, 'fileErrors' | 'reloadPending'>): string | null {
  const blocking = facts.fileErrors.filter((e) => isBlockingHbaError(e.error));
  if (blocking.length) {
    const lines = blocking.map((e) => `line ${e.line}`).join(', ');
    return (
      `the file on disk has errors (${lines}), so PostgreSQL refused to load it: the rules in force are the previous ones, ` +
      `which SQL cannot show; this is what the file on disk would do`
    );
  }
  if (facts.reloadPending === true) {
    return (
      'the file on disk was changed after the last reload: the rules in force are the previous ones, which SQL cannot show; ' +
      'this is what the file on disk would do once reloaded'
    );
  }
  return null;
}

/** Prefix every decision's reason with the caveat (pure). */
export function withCaveat(decisions: HbaDecision[], caveat: string | null): HbaDecision[] {
  if (caveat === null) return decisions;
  return decisions.map((d) => ({ ...d, reason: d.reason ? `${caveat}; ${d.reason}` : caveat }));
}

function unreadable(reason: string, file: string | null, reloadPending: boolean | null = null): HbaFacts {
  return {
    readable: false,
    unreadableReason: reason,
    file,
    rules: [],
    rawSource: null,
    mismatches: [],
    fileErrors: [],
    reloadPending,
    decisions: [],
    shadowedRejects: [],
  };
}

export async function collectHba(q: Queryable, ctx: HbaCollectContext): Promise<HbaFacts> {
  const access = (await q.query<AccessRow>(HBA_ACCESS_SQL)).rows[0];
  const file = ctx.server.hbaFile ?? access?.hba_file ?? null;
  if (!access?.can_read) return unreadable(HBA_UNREADABLE_REASON, file);

  let rules: HbaRule[];
  try {
    rules = (await q.query<RuleRow>(hbaRulesSql(ctx.server.major))).rows.map(ruleFromRow);
  } catch (err) {
    const code = sqlstate(err);
    if (code === '42501') return unreadable(HBA_UNREADABLE_REASON, file);
    if (code !== null) return unreadable(`could not read pg_hba_file_rules: ${(err as Error).message} (SQLSTATE ${code})`, file);
    throw err;
  }

  // The view drops quotes ("all" reads as all): take them from the file itself, where it can be read.
  let rawSource: HbaFacts['rawSource'] = null;
  let mismatches: HbaFacts['mismatches'] = [];
  const raw = file === null ? null : await readRawHba(q, file, ctx.server.major);
  if (raw && file !== null) {
    const merged = mergeWithView(rules, rulesFromLines(raw.lines), file);
    // a file that disagrees anywhere may be another file, or read differently: none of its quoting is trusted
    if (!merged.mismatches.length) rules = merged.rules;
    mismatches = merged.mismatches;
    rawSource = raw.source;
  }
  // current_setting('hba_file') needs superuser or pg_read_all_settings: pg_settings hides the row otherwise.
  const reloadPending = await collectReloadPending(q, {
    canStat: access.can_stat && access.hba_file !== null,
    raw,
    hasIncludes: rules.some((r) => r.fileName !== null && r.fileName !== file),
  });

  const fileErrors = rules
    .filter((r): r is HbaRule & { error: string } => r.error !== null)
    .map((r) => ({ line: r.lineNumber, fileName: r.fileName, error: r.error }));

  const memberOf = [...new Set(ctx.memberships.memberOf.map((m) => m.role))];
  const result = evaluateHba({
    rules,
    role: ctx.role.name,
    memberOf,
    // a superuser may stream without the REPLICATION attribute
    replication: ctx.role.replication || ctx.role.superuser,
    databases: ctx.databases,
    addresses: sessionAddresses(ctx.sessions),
    sslPossible: access.ssl !== 'off',
    regexTokens: ctx.server.major >= 16,
  });
  const caveat = notInForceCaveat({ fileErrors, reloadPending });
  return {
    readable: true,
    unreadableReason: null,
    file,
    rules,
    rawSource,
    mismatches,
    fileErrors,
    reloadPending,
    decisions: withCaveat(result.decisions, caveat),
    shadowedRejects: result.shadowedRejects,
  };
}

/** Allow decisions whose method ignores VALID UNTIL (anything but md5, scram-sha-256, password): an expired role still gets in. */
export function hbaAllowsWithoutPassword(facts: HbaFacts): HbaDecision[] {
  return facts.decisions.filter((d) => d.outcome === 'allow' && !PASSWORD_METHODS.has(d.authMethod ?? ''));
}

// ---- findings ----

function lineLabel(facts: HbaFacts, line: number, fileName: string | null): string {
  return fileName && facts.file && fileName !== facts.file ? `line ${line} of ${fileName}` : `line ${line}`;
}

/** The valid rule at a line, when the line number identifies one rule. */
function ruleAt(facts: HbaFacts, line: number): HbaRule | null {
  const hits = facts.rules.filter((r) => r.error === null && r.lineNumber === line);
  return hits.length === 1 ? hits[0]! : null;
}

function lineWithText(facts: HbaFacts, line: number, fileName: string | null): string {
  const rule =
    fileName === null ? ruleAt(facts, line) : (facts.rules.find((r) => r.lineNumber === line && r.fileName === fileName) ?? null);
  const label = lineLabel(facts, line, fileName);
  return rule ? `${label} (${describeRule(rule)})` : label;
}

function list(items: string[], max: number): string {
  const shown = items.slice(0, max).join('; ');
  return items.length > max ? `${shown}; and ${items.length - max} more` : shown;
}

const RELOAD = 'then run SELECT pg_reload_conf(); and check that pg_hba_file_rules shows no error rows';

/**
 * The lines that reject the role, one per line as in the file: the very lines pgrevoke cutoff writes
 * (rejectRules), so what a DBA pastes and what cutoff adds never differ. A name pg_hba.conf cannot
 * hold gets the reason instead, as cutoff's HBA step says it.
 */
function rejectRemediation(facts: RoleFacts, above: string): string {
  const after = 'This stops new logins only: sessions already open must be terminated, and ALTER ROLE ... NOLOGIN is needed as well.';
  const cannot = hbaInexpressible(facts.role.name, facts.server.major);
  if (cannot)
    return `No pg_hba.conf line can reject exactly this role: ${cannot}. ALTER ROLE ... NOLOGIN and terminating its sessions are the levers (pgrevoke cutoff does both).`;
  return [
    `Add these lines above ${above} (pg_hba.conf is first-match; pgrevoke cutoff writes the same lines at the top of the file):`,
    ...rejectRules(facts.role.name).map((line) => `  ${line}`),
    `${RELOAD}. ${after}`,
  ].join('\n');
}

function fileErrorFindings(facts: HbaFacts): Finding[] {
  const blocking = facts.fileErrors.filter((e) => isBlockingHbaError(e.error));
  const ignoredLines = facts.fileErrors.filter((e) => !isBlockingHbaError(e.error));
  const fmt = (e: HbaFacts['fileErrors'][number]) => `${lineLabel(facts, e.line, e.fileName)}: ${e.error}`;
  const out: Finding[] = [];
  if (blocking.length) {
    const first = blocking[0]!;
    out.push({
      id: 'hba.file_error',
      severity: 'high',
      title: 'pg_hba.conf on disk has errors: PostgreSQL refuses to load it',
      detail:
        `${list(blocking.map(fmt), 10)}. A file with errors is refused as a whole on reload, although pg_reload_conf() still returns true: ` +
        'the rules in force are the previous ones, which SQL cannot show, and any HBA change made since then is not in force.',
      remediation: `Fix the error at ${lineLabel(facts, first.line, first.fileName)}${blocking.length > 1 ? ' (and the other lines listed)' : ''}, ${RELOAD}.`,
      exposure: false,
    });
  }
  if (ignoredLines.length) {
    out.push({
      id: 'hba.file_error',
      severity: 'low',
      title: 'pg_hba.conf has lines that can never match',
      detail:
        `${list(ignoredLines.map(fmt), 10)}. PostgreSQL still loads the file, but these lines never match any connection, ` +
        'so a reject written there does nothing.',
      remediation: `Change or remove ${ignoredLines.map((e) => lineLabel(facts, e.line, e.fileName)).join(', ')} (or enable the feature it needs), ${RELOAD}.`,
      exposure: false,
    });
  }
  return out;
}

function notRejectedFinding(facts: RoleFacts): Finding | null {
  const h = facts.hba;
  const role = facts.role.name;
  const allows = h.decisions.filter((d) => d.outcome === 'allow');
  const undecidable = h.decisions.filter((d) => d.outcome === 'undecidable');
  if (!allows.length && !undecidable.length) return null;

  const caveat = notInForceCaveat(h);
  const byLine = new Map<string, { line: number; fileName: string | null; scenarios: string[] }>();
  for (const d of allows) {
    const key = `${d.fileName ?? ''}:${d.line}`;
    const entry = byLine.get(key) ?? { line: d.line ?? 0, fileName: d.fileName, scenarios: [] };
    entry.scenarios.push(describeScenario(d.scenario));
    byLine.set(key, entry);
  }
  const allowText = [...byLine.values()].map((e) => `${lineWithText(h, e.line, e.fileName)} admits ${list(e.scenarios, 3)}`);
  const undecidableText = [...new Set(undecidable.map((d) => d.reason ?? 'undecidable'))];
  const parts: string[] = [];
  if (allowText.length) parts.push(`${allowText.join('. ')}.`);
  if (undecidableText.length) {
    parts.push(`${undecidable.length} of ${h.decisions.length} connection kinds could not be decided: ${list(undecidableText, 3)}.`);
  }
  if (caveat) parts.push(`Caution: ${caveat}.`);
  if (h.reloadPending === null) parts.push('Whether the file was reloaded since its last change could not be checked.');

  // the earliest line (in the order PostgreSQL tries them) that admits the role; else the first non-reject line
  const ordered = orderedRules(h.rules);
  const allowKeys = new Set(allows.map((d) => `${d.fileName ?? ''}:${d.line}`));
  const target =
    ordered.find((r) => allowKeys.has(`${r.fileName ?? ''}:${r.lineNumber}`)) ?? ordered.find((r) => r.authMethod !== 'reject') ?? null;
  const above = target ? lineLabel(h, target.lineNumber, target.fileName) : 'the first line';
  const remediation = rejectRemediation(facts, above);

  if (allows.length) {
    return {
      id: 'hba.not_rejected',
      severity: 'high',
      title: `pg_hba.conf still admits ${quoteName(role)}`,
      detail: `${allows.length} of ${h.decisions.length} connection kinds evaluated reach an allowing line. ${parts.join(' ')}`,
      remediation,
      exposure: false,
    };
  }
  return {
    id: 'hba.not_rejected',
    severity: 'medium',
    title: `pg_hba.conf may still admit ${quoteName(role)}`,
    detail: `No connection kind is certainly admitted, but some could not be decided. ${parts.join(' ')}`,
    remediation,
    exposure: false,
  };
}

function shadowedFindings(facts: RoleFacts): Finding[] {
  const h = facts.hba;
  const caveat = notInForceCaveat(h);
  return h.shadowedRejects.map((s) => {
    const reject = lineWithText(h, s.rejectLine, null);
    const shadow = lineWithText(h, s.shadowingLine, null);
    return {
      id: 'hba.reject_shadowed',
      severity: 'high',
      title: `reject rule at line ${s.rejectLine} never fires: line ${s.shadowingLine} matches first`,
      detail:
        `The reject rule at ${reject} never fires for ${describeScenario(s.scenario)}: ` +
        `${shadow} matches first and authenticates with ${s.shadowingAuthMethod ?? 'its method'}. pg_hba.conf is first-match; later lines are not consulted.` +
        (caveat ? ` Caution: ${caveat}.` : ''),
      remediation:
        `Move the reject rule at line ${s.rejectLine} above line ${s.shadowingLine} (or narrow line ${s.shadowingLine} so it no longer covers ${quoteName(facts.role.name)}), ` +
        `${RELOAD}.`,
      exposure: false,
    };
  });
}

export const hbaCheck: Check = {
  ids: ['hba.not_rejected', 'hba.reject_shadowed', 'hba.file_error', 'hba.reload_pending', 'hba.file_mismatch', 'hba.unreadable'],
  evaluate(facts: RoleFacts): Finding[] {
    const h = facts.hba;
    if (!h.readable) {
      return [
        {
          id: 'hba.unreadable',
          severity: 'info',
          title: 'pg_hba.conf rules could not be read',
          detail:
            `${h.unreadableReason ?? 'pg_hba_file_rules is not readable'}. Whether pg_hba.conf still admits ${quoteName(facts.role.name)} is unknown; ` +
            'the HBA step cannot be checked from here.',
          remediation:
            'Run pgrevoke inspect as a superuser to evaluate pg_hba.conf. On a managed service without file access (RDS, Cloud SQL, Azure, Neon) ' +
            'the HBA step does not apply: ALTER ROLE ... NOLOGIN and terminating the sessions are the levers.',
          exposure: false,
        },
      ];
    }
    const out: Finding[] = [];
    out.push(...fileErrorFindings(facts.hba));
    if (h.reloadPending === true) {
      out.push({
        id: 'hba.reload_pending',
        severity: 'medium',
        title: 'pg_hba.conf was changed after the last reload',
        detail:
          `${h.file ?? 'The hba file'} was modified after pg_conf_load_time(): the rules on disk are not in force yet, ` +
          'and the evaluation shows what they would do once reloaded.',
        remediation:
          'Review the file, fix any error rows first (a file with errors is refused as a whole), then run SELECT pg_reload_conf();',
        exposure: false,
      });
    }
    if (h.mismatches.length) {
      out.push({
        id: 'hba.file_mismatch',
        severity: 'medium',
        title: 'pg_hba.conf as read here and pg_hba_file_rules disagree',
        detail:
          `${list(
            h.mismatches.map((m) => `${lineLabel(h, m.line, m.fileName)}: ${m.detail}`),
            10,
          )}. ` +
          `The file was read ${h.rawSource === 'local' ? 'from this host' : 'through the server'}; ` +
          'so the view alone was used for every line: keyword-looking tokens are undecidable.',
        remediation:
          'Check that hba_file names the file the server reads, and report the line if it is the same file (a parsing difference).',
        exposure: false,
      });
    }
    const nr = notRejectedFinding(facts);
    if (nr) out.push(nr);
    out.push(...shadowedFindings(facts));
    return out;
  },
};
