// First-match evaluation of pg_hba rules (as pg_hba_file_rules shows them) for one role.
// Pure: no I/O. Mirrors check_hba(), check_db(), check_role() and check_ip() in
// src/backend/libpq/hba.c (PG14..18); what cannot be reproduced client-side is reported
// as "undecidable because ..." instead of guessed.
import ipaddr from 'ipaddr.js';
import type { HbaDecision, HbaOutcome, HbaRule, HbaScenario, ShadowedReject } from './types.js';

export interface HbaEvalInput {
  rules: HbaRule[];
  /** Exact role name (pg_roles.rolname). */
  role: string;
  /** Names of roles the target is a member of, direct or inherited (not itself); superusers are not implicit members. */
  memberOf: string[];
  /** The role has the REPLICATION attribute: also evaluate physical replication connections. */
  replication: boolean;
  /** Databases the role could connect to. */
  databases: string[];
  /** Client addresses seen on its sessions; generic remote and loopback addresses are added here. */
  addresses: { address: string; label: string }[];
  /** False when the server runs with ssl = off: no connection can be SSL, so only non-SSL TCP scenarios are evaluated. Default true. */
  sslPossible?: boolean;
  /** PG16+: a database/user token starting with '/' is a regular expression; PG<=15: a literal name. Default true. */
  regexTokens?: boolean;
}

/** A scenario as evaluated (kept as a name: `replication` now lives on HbaScenario itself). */
export type HbaEvalScenario = HbaScenario;

export interface HbaEvalResult {
  decisions: HbaDecision[];
  shadowedRejects: ShadowedReject[];
}

/** Addresses always evaluated besides the ones seen on the role's sessions (documentation ranges, RFC 5737 / RFC 3849). */
export const GENERIC_ADDRESSES: readonly { address: string; label: string }[] = [
  { address: '203.0.113.7', label: 'generic remote IPv4' },
  { address: '2001:db8::7', label: 'generic remote IPv6' },
  { address: '127.0.0.1', label: 'loopback IPv4' },
  { address: '::1', label: 'loopback IPv6' },
];

/** Auth methods for which an expired VALID UNTIL refuses the login. */
export const PASSWORD_METHODS: ReadonlySet<string> = new Set(['md5', 'scram-sha-256', 'password']);

export { isBlockingHbaError } from './file-errors.js';

type Tri = { kind: 'yes' } | { kind: 'no' } | { kind: 'maybe'; reason: string };
const YES: Tri = { kind: 'yes' };
const NO: Tri = { kind: 'no' };
const maybe = (reason: string): Tri => ({ kind: 'maybe', reason });

interface Ctx {
  role: string;
  memberOf: ReadonlySet<string>;
  regexTokens: boolean;
}

/** Rules that PostgreSQL tries, in the order it tries them. */
export function orderedRules(rules: HbaRule[]): HbaRule[] {
  return rules
    .filter((r) => r.error === null)
    .map((r, i) => ({ r, i }))
    .sort((a, b) => (a.r.ruleNumber ?? a.r.lineNumber) - (b.r.ruleNumber ?? b.r.lineNumber) || a.i - b.i)
    .map(({ r }) => r);
}

function lineRef(rule: HbaRule): string {
  return `line ${rule.lineNumber}`;
}

function parseIp(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const bare = text.replace(/\/\d+$/, '').replace(/%.*$/, '');
  try {
    if (ipaddr.IPv6.isValid(bare)) return ipaddr.IPv6.parse(bare);
    if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return ipaddr.IPv4.parse(bare);
  } catch {
    /* fall through */
  }
  return null;
}

/** The rule's address range, or why it is not a plain IP range. */
type RuleRange =
  | { kind: 'all' }
  | { kind: 'range'; addr: ipaddr.IPv4 | ipaddr.IPv6; mask: ipaddr.IPv4 | ipaddr.IPv6; prefix: number | null }
  | { kind: 'samehost' | 'samenet' | 'hostname' | 'unparsable' | 'none'; text: string };

function ruleRange(rule: HbaRule): RuleRange {
  const a = rule.address;
  if (a === null) return { kind: 'none', text: '' };
  if (a === 'all') return { kind: 'all' };
  if (a === 'samehost' || a === 'samenet') return { kind: a, text: a };
  if (rule.netmask !== null) {
    const addr = parseIp(a);
    const mask = parseIp(rule.netmask);
    if (!addr || !mask || addr.kind() !== mask.kind()) return { kind: 'unparsable', text: `${a} ${rule.netmask}` };
    return { kind: 'range', addr, mask, prefix: mask.prefixLengthFromSubnetMask() };
  }
  // The view always shows a numeric address with its netmask; be lenient with a CIDR or a bare address.
  if (ipaddr.isValidCIDR(a)) {
    const [addr, prefix] = ipaddr.parseCIDR(a);
    const mask = addr.kind() === 'ipv4' ? ipaddr.IPv4.subnetMaskFromPrefixLength(prefix) : ipaddr.IPv6.subnetMaskFromPrefixLength(prefix);
    return { kind: 'range', addr, mask, prefix };
  }
  const bare = parseIp(a);
  if (bare) {
    const bits = bare.kind() === 'ipv4' ? 32 : 128;
    const mask = bare.kind() === 'ipv4' ? ipaddr.IPv4.subnetMaskFromPrefixLength(bits) : ipaddr.IPv6.subnetMaskFromPrefixLength(bits);
    return { kind: 'range', addr: bare, mask, prefix: bits };
  }
  return { kind: 'hostname', text: a };
}

/** pg_range_sockaddr(): same family, and the masked bits equal. */
function inRange(client: ipaddr.IPv4 | ipaddr.IPv6, range: Extract<RuleRange, { kind: 'range' }>): boolean {
  // An IPv4 rule never matches an IPv6 client, IPv4-mapped or not (check_ip compares families).
  if (client.kind() !== range.addr.kind()) return false;
  if (range.prefix !== null) return client.match(range.addr, range.prefix);
  // Non-contiguous netmask (allowed in the address + mask form): compare byte by byte under the mask.
  const c = client.toByteArray();
  const r = range.addr.toByteArray();
  const m = range.mask.toByteArray();
  return c.every((byte, i) => ((byte ^ (r[i] ?? 0)) & (m[i] ?? 0)) === 0);
}

function matchType(rule: HbaRule, s: HbaEvalScenario): Tri {
  switch (rule.type) {
    case 'local':
      return s.transport === 'local' ? YES : NO;
    case 'host':
      return s.transport === 'host' ? YES : NO;
    case 'hostssl':
      return s.transport === 'host' && s.ssl ? YES : NO;
    case 'hostnossl':
      return s.transport === 'host' && !s.ssl ? YES : NO;
    case 'hostgssenc':
      // An SSL connection is never GSS-encrypted; a non-SSL one may or may not be.
      if (s.transport !== 'host' || s.ssl) return NO;
      return maybe(
        `undecidable because the GSS encryption state of a future connection is unknown: ` +
          `a GSS-encrypted connection would match ${lineRef(rule)} (hostgssenc), one without GSS encryption would skip it`,
      );
    case 'hostnogssenc':
      return s.transport === 'host' ? YES : NO;
    default:
      return NO;
  }
}

function matchAddress(rule: HbaRule, s: HbaEvalScenario, client: ipaddr.IPv4 | ipaddr.IPv6 | null): Tri {
  if (s.transport === 'local') return YES;
  const range = ruleRange(rule);
  switch (range.kind) {
    case 'all':
      return YES;
    case 'none':
      return NO;
    case 'samehost':
    case 'samenet':
      return maybe(
        `undecidable because ${lineRef(rule)} uses ${range.kind}, which depends on the server's network interfaces, which SQL cannot list`,
      );
    case 'hostname':
      return maybe(
        `undecidable because ${lineRef(rule)} names the host "${range.text}": host-name matching depends on reverse and forward DNS at connection time`,
      );
    case 'unparsable':
      return maybe(`undecidable because the address of ${lineRef(rule)} ("${range.text}") could not be parsed`);
    case 'range':
      if (client === null) return maybe(`undecidable because the client address "${s.address ?? ''}" could not be parsed`);
      return inRange(client, range) ? YES : NO;
  }
}

const regexReason = (rule: HbaRule, field: string) =>
  `undecidable because the rule uses a PostgreSQL regular expression (${lineRef(rule)}, ${field} field), which is not evaluated client-side`;

/** Keywords of the database field; a token is one only when unquoted (hba.c token_is_keyword). */
const DB_KEYWORDS: ReadonlySet<string> = new Set(['all', 'sameuser', 'samerole', 'samegroup', 'replication']);

/**
 * Was the token quoted? true / false from the raw file; null when only pg_hba_file_rules was read
 * (it drops the quotes), so a keyword-looking token could be either.
 */
function quotedAt(rule: HbaRule, field: 'database' | 'userName', i: number): boolean | null {
  return rule.quoted ? (rule.quoted[field][i] ?? false) : null;
}

/** One database token under a known quoting: check_db()'s branches in order. */
function dbToken(tok: string, quoted: boolean, rule: HbaRule, s: HbaEvalScenario, ctx: Ctx): Tri | 'skip' {
  if (s.replication) {
    // physical replication connections can only match the (unquoted) replication keyword
    return !quoted && tok === 'replication' ? YES : 'skip';
  }
  if (!quoted) {
    if (tok === 'all') return YES;
    if (tok === 'sameuser') return s.database === ctx.role ? YES : 'skip';
    // is_member(): the role itself counts (is_member_of_role_nosuper returns true for member == role)
    if (tok === 'samerole' || tok === 'samegroup') return s.database === ctx.role || ctx.memberOf.has(s.database) ? YES : 'skip';
    if (tok === 'replication') return 'skip'; // never matches a non-replication connection
  }
  if (ctx.regexTokens && tok.startsWith('/')) return maybe(regexReason(rule, 'database'));
  return tok === s.database ? YES : 'skip';
}

/** One user token under a known quoting: check_role()'s branches in order. */
function userToken(tok: string, quoted: boolean, rule: HbaRule, ctx: Ctx): Tri | 'skip' {
  if (ctx.regexTokens && tok.startsWith('/')) return maybe(regexReason(rule, 'user'));
  if (!quoted && tok.startsWith('+')) {
    const group = tok.slice(1);
    // is_member(): direct or inherited membership, or the role itself; superuser does not count
    return group === ctx.role || ctx.memberOf.has(group) ? YES : 'skip';
  }
  if (!quoted && tok === 'all') return YES;
  return tok === ctx.role ? YES : 'skip';
}

const ambiguousReason = (rule: HbaRule, field: string, tok: string, unquoted: string, quoted: string) =>
  `undecidable because ${lineRef(rule)} has ${tok} in its ${field} field, and pg_hba_file_rules shows tokens without their quotes: ` +
  `unquoted it is ${unquoted}, quoted (${quoteName(tok)}) ${quoted}; reading the file itself (pg_read_file, or this host) would decide`;

/**
 * A token whose quoting is unknown: decided when both readings agree, undecidable when they do not
 * (never a guess: a quoted "all" is a false "rejected" waiting to happen).
 */
function eitherQuoting(eval_: (quoted: boolean) => Tri | 'skip', reason: string): Tri | 'skip' {
  const a = eval_(false);
  const b = eval_(true);
  const k = (t: Tri | 'skip') => (t === 'skip' ? 'no' : t.kind);
  if (k(a) === k(b)) return a;
  return maybe(reason);
}

/** First-match over a field's tokens: the first YES wins; a maybe is remembered unless a later token says YES. */
function scanTokens(tokens: string[], one: (tok: string, i: number) => Tri | 'skip'): Tri {
  let result = NO;
  for (let i = 0; i < tokens.length; i++) {
    const t = one(tokens[i]!, i);
    if (t === 'skip') continue;
    if (t.kind === 'yes') return YES;
    if (t.kind === 'maybe' && result.kind === 'no') result = t;
  }
  return result;
}

/** check_db(). */
function matchDatabase(rule: HbaRule, s: HbaEvalScenario, ctx: Ctx): Tri {
  return scanTokens(rule.database, (tok, i) => {
    const q = quotedAt(rule, 'database', i);
    if (q !== null || !DB_KEYWORDS.has(tok)) return dbToken(tok, q ?? false, rule, s, ctx);
    const target = s.replication ? 'physical replication connections' : `database ${quoteName(s.database)}`;
    return eitherQuoting(
      (quoted) => dbToken(tok, quoted, rule, s, ctx),
      ambiguousReason(rule, 'database', tok, `the keyword ${tok}`, `the database named ${tok}, and the two differ for ${target}`),
    );
  });
}

/** check_role(). */
function matchUser(rule: HbaRule, ctx: Ctx): Tri {
  return scanTokens(rule.userName, (tok, i) => {
    const q = quotedAt(rule, 'userName', i);
    if (q !== null || (tok !== 'all' && !tok.startsWith('+'))) return userToken(tok, q ?? false, rule, ctx);
    const unquoted = tok === 'all' ? 'the keyword all' : `members of ${quoteName(tok.slice(1))}`;
    return eitherQuoting(
      (quoted) => userToken(tok, quoted, rule, ctx),
      ambiguousReason(rule, 'user', tok, unquoted, `the role named ${tok}, and the two differ for ${quoteName(ctx.role)}`),
    );
  });
}

/** Does one rule match one scenario? yes / no / maybe (with every reason it might). */
function matchRule(rule: HbaRule, s: HbaEvalScenario, client: ipaddr.IPv4 | ipaddr.IPv6 | null, ctx: Ctx): Tri {
  const parts = [matchType(rule, s), matchAddress(rule, s, client), matchDatabase(rule, s, ctx), matchUser(rule, ctx)];
  if (parts.some((p) => p.kind === 'no')) return NO;
  const reasons = parts.flatMap((p) => (p.kind === 'maybe' ? [p.reason] : []));
  return reasons.length ? maybe(reasons.join('; ')) : YES;
}

interface Walk {
  outcome: HbaOutcome;
  rule: HbaRule | null;
  index: number;
  reason: string | null;
}

function walk(rules: HbaRule[], s: HbaEvalScenario, ctx: Ctx): Walk {
  const client = s.address === null ? null : parseIp(s.address);
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    const m = matchRule(rule, s, client, ctx);
    if (m.kind === 'no') continue;
    if (m.kind === 'maybe') return { outcome: 'undecidable', rule, index: i, reason: m.reason };
    if (rule.authMethod === 'reject') return { outcome: 'reject', rule, index: i, reason: null };
    let reason: string | null = null;
    if (rule.type === 'hostnogssenc' && !s.ssl) {
      reason = `${lineRef(rule)} is hostnogssenc: it decides connections without GSS encryption; a GSS-encrypted connection would skip it`;
    }
    return { outcome: 'allow', rule, index: i, reason };
  }
  return { outcome: 'no_match', rule: null, index: rules.length, reason: 'no line matches, so PostgreSQL rejects the connection' };
}

function normalizeAddress(address: string): string {
  const ip = parseIp(address);
  return ip ? ip.toNormalizedString() : address;
}

function buildScenarios(input: HbaEvalInput): HbaEvalScenario[] {
  const seen = new Set<string>();
  const addresses: { address: string; label: string }[] = [];
  for (const a of [...input.addresses, ...GENERIC_ADDRESSES]) {
    const key = normalizeAddress(a.address);
    if (seen.has(key)) continue;
    seen.add(key);
    addresses.push(a);
  }
  const sslStates = input.sslPossible === false ? [false] : [false, true];
  const targets: { database: string; replication: boolean }[] = input.databases.map((database) => ({ database, replication: false }));
  if (input.replication) targets.push({ database: 'replication', replication: true });

  const out: HbaEvalScenario[] = [];
  for (const t of targets) {
    out.push({
      transport: 'local',
      ssl: false,
      gss: false,
      database: t.database,
      address: null,
      addressLabel: null,
      replication: t.replication,
    });
    for (const a of addresses) {
      for (const ssl of sslStates) {
        out.push({
          transport: 'host',
          ssl,
          gss: false,
          database: t.database,
          address: a.address,
          addressLabel: a.label,
          replication: t.replication,
        });
      }
    }
  }
  return out;
}

/** An address inside a rule's range: the network address + 1 (a host address), or the network address when + 1 leaves it (/32, /128). */
export function representativeAddress(range: Extract<RuleRange, { kind: 'range' }>, plusOne = true): string {
  const mask = range.mask.toByteArray();
  const net = range.addr.toByteArray().map((b, i) => b & (mask[i] ?? 0));
  if (!plusOne) return ipaddr.fromByteArray(net).toString();
  const plus = [...net];
  for (let i = plus.length - 1; i >= 0; i--) {
    plus[i] = (plus[i]! + 1) & 0xff;
    if (plus[i] !== 0) break;
  }
  const candidate = ipaddr.fromByteArray(plus);
  return (inRange(candidate, range) ? candidate : ipaddr.fromByteArray(net)).toString();
}

/**
 * One address inside the range of each rule of the given kind that may match the role, so that a
 * range no session came from is still evaluated (first-match: an earlier line may still decide it).
 */
function rangeScenarios(
  rules: HbaRule[],
  input: HbaEvalInput,
  base: HbaEvalScenario[],
  ctx: Ctx,
  which: (rule: HbaRule) => boolean,
): HbaEvalScenario[] {
  const known = new Set(base.filter((s) => s.address !== null).map((s) => normalizeAddress(s.address!)));
  const knownIps = () => [...known].map(parseIp).filter((ip): ip is ipaddr.IPv4 | ipaddr.IPv6 => ip !== null);
  const sslStates = input.sslPossible === false ? [false] : [false, true];
  const targets = [...new Set(base.map((s) => `${s.replication ? 'r' : 'd'}:${s.database}`))].map((k) => ({
    replication: k.startsWith('r:'),
    database: k.slice(2),
  }));
  const out: HbaEvalScenario[] = [];
  for (const rule of rules) {
    if (!which(rule) || rule.type === 'local' || matchUser(rule, ctx).kind === 'no') continue;
    const range = ruleRange(rule);
    if (range.kind !== 'range') continue;
    // a range some evaluated address already lies in is sampled already
    if (which === isAllowing && knownIps().some((ip) => inRange(ip, range))) continue;
    const address = representativeAddress(range, which === isAllowing);
    if (known.has(normalizeAddress(address))) continue;
    known.add(normalizeAddress(address));
    const cidr = range.prefix !== null ? `${range.addr.toString()}/${range.prefix}` : `${rule.address ?? ''} ${rule.netmask ?? ''}`;
    const label = `an address inside ${cidr}, the range of ${lineRef(rule)}`;
    for (const t of targets) {
      for (const ssl of sslStates) {
        out.push({ transport: 'host', ssl, gss: false, database: t.database, address, addressLabel: label, replication: t.replication });
      }
    }
  }
  return out;
}

const isAllowing = (r: HbaRule) => r.authMethod !== 'reject';
const isRejecting = (r: HbaRule) => r.authMethod === 'reject';

function connectionType(s: HbaScenario): HbaDecision['connectionType'] {
  return s.transport === 'local' ? 'local' : s.ssl ? 'hostssl' : 'hostnossl';
}

export function evaluateHba(input: HbaEvalInput): HbaEvalResult {
  const rules = orderedRules(input.rules);
  const ctx: Ctx = {
    role: input.role,
    memberOf: new Set(input.memberOf.filter((m) => m !== input.role)),
    regexTokens: input.regexTokens ?? true,
  };
  const base = buildScenarios(input);
  // allowing ranges become decisions of their own; reject ranges only feed the shadowing check below
  const scenarios = [...base, ...rangeScenarios(rules, input, base, ctx, isAllowing)];

  const decisions: HbaDecision[] = [];
  const walks: { s: HbaEvalScenario; w: Walk }[] = [];
  for (const s of scenarios) {
    const w = walk(rules, s, ctx);
    walks.push({ s, w });
    decisions.push({
      scenario: s,
      user: input.role,
      connectionType: connectionType(s),
      outcome: w.outcome,
      line: w.rule?.lineNumber ?? null,
      fileName: w.rule?.fileName ?? null,
      ruleNumber: w.rule?.ruleNumber ?? null,
      authMethod: w.outcome === 'undecidable' ? null : (w.rule?.authMethod ?? null),
      reason: w.reason,
    });
  }
  for (const s of rangeScenarios(rules, input, scenarios, ctx, isRejecting)) walks.push({ s, w: walk(rules, s, ctx) });

  // A reject rule that would match, but an earlier non-reject rule matches first.
  const shadowedRejects: ShadowedReject[] = [];
  const seenPairs = new Set<string>();
  for (const { s, w } of walks) {
    if (w.outcome !== 'allow' || !w.rule) continue;
    const client = s.address === null ? null : parseIp(s.address);
    for (let i = w.index + 1; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.authMethod !== 'reject') continue;
      if (matchRule(r, s, client, ctx).kind !== 'yes') continue;
      const key = `${r.fileName ?? ''}:${r.lineNumber}|${w.rule.fileName ?? ''}:${w.rule.lineNumber}`;
      if (seenPairs.has(key)) continue;
      seenPairs.add(key);
      shadowedRejects.push({
        rejectLine: r.lineNumber,
        shadowingLine: w.rule.lineNumber,
        shadowingAuthMethod: w.rule.authMethod,
        scenario: s,
      });
    }
  }
  return { decisions, shadowedRejects };
}

/** "TCP connections to database "app" from 203.0.113.7 (generic remote IPv4) without SSL". */
export function describeScenario(s: HbaScenario): string {
  const what = s.replication ? 'physical replication connections' : `connections to database ${quoteName(s.database)}`;
  if (s.transport === 'local') return `local (Unix-socket) ${what}`;
  const from = s.address === null ? '' : ` from ${s.address}${s.addressLabel ? ` (${s.addressLabel})` : ''}`;
  return `TCP ${what}${from} ${s.ssl ? 'with SSL' : 'without SSL'}`;
}

/** A rule as it would read in pg_hba.conf: "host all all 0.0.0.0/0 scram-sha-256". */
export function describeRule(rule: HbaRule): string {
  const parts = [rule.type ?? '?', rule.database.map(hbaToken).join(','), rule.userName.map(hbaToken).join(',')];
  if (rule.type !== 'local' && rule.address !== null) {
    const range = ruleRange(rule);
    if (range.kind === 'range' && range.prefix !== null && rule.netmask !== null) parts.push(`${range.addr.toString()}/${range.prefix}`);
    else if (rule.netmask !== null) parts.push(rule.address, rule.netmask);
    else parts.push(rule.address);
  }
  parts.push(rule.authMethod ?? '?');
  for (const opt of rule.options ?? []) parts.push(opt);
  return parts.join(' ');
}

/** Quote a name for display (and for pg_hba.conf): double quotes, embedded quotes doubled. */
export function quoteName(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A token as written in pg_hba.conf: keywords and plain names bare, anything else quoted. */
function hbaToken(tok: string): string {
  return /^[+/]?[A-Za-z0-9_.\-$^*\\[\]()|?]+$/.test(tok) ? tok : quoteName(tok);
}

/** The database field holds `kw` as the keyword for certain: unquoted in the file as read. */
function hasKeyword(rule: HbaRule, kw: string): boolean {
  return rule.database.some((t, i) => t === kw && quotedAt(rule, 'database', i) === false);
}

/**
 * Does every pg_hba.conf path reject the role? Decided over the rules themselves, not over sample
 * addresses: a non-reject line that may match the role counts unless earlier reject lines for the
 * role already cover its whole transport (local, or TCP for its address family) for every database.
 * Conservative: anything undecidable counts as a way in. With `passwordless` (an expired role:
 * VALID UNTIL refuses password methods only), a password-method line is no way in either.
 */
export function rejectedEverywhere(
  input: Pick<HbaEvalInput, 'rules' | 'role' | 'memberOf' | 'replication' | 'regexTokens'> & { passwordless?: boolean },
): {
  rejected: boolean;
  reason: string;
} {
  const ctx: Ctx = {
    role: input.role,
    memberOf: new Set(input.memberOf.filter((m) => m !== input.role)),
    regexTokens: input.regexTokens ?? true,
  };
  const covered = { local: false, ipv4: false, ipv6: false };
  for (const rule of orderedRules(input.rules)) {
    const user = matchUser(rule, ctx);
    if (user.kind === 'no') continue;
    const range = ruleRange(rule);
    const families: ('ipv4' | 'ipv6')[] = range.kind === 'range' ? [range.addr.kind()] : ['ipv4', 'ipv6'];
    if (rule.authMethod === 'reject') {
      // only a token known to be the unquoted keyword covers every database (a quoted "all" is one database)
      const everyDb = hasKeyword(rule, 'all') && (!input.replication || hasKeyword(rule, 'replication'));
      if (user.kind !== 'yes' || !everyDb) continue;
      if (rule.type === 'local') covered.local = true;
      if (rule.type === 'host') {
        if (range.kind === 'all') covered.ipv4 = covered.ipv6 = true;
        else if (range.kind === 'range' && range.prefix === 0) covered[range.addr.kind()] = true;
      }
      continue;
    }
    // a password line refuses an expired role; it covers nothing either (conservative)
    if (input.passwordless && PASSWORD_METHODS.has(rule.authMethod ?? '')) continue;
    const open = rule.type === 'local' ? !covered.local : families.some((f) => !covered[f]);
    const how = input.passwordless ? ' without a password' : '';
    if (open) return { rejected: false, reason: `${lineRef(rule)} (${describeRule(rule)}) may admit it${how}` };
  }
  return {
    rejected: true,
    reason: input.passwordless
      ? 'every pg_hba.conf line that could match the role rejects it or asks for a password'
      : 'every pg_hba.conf line that could match the role rejects it',
  };
}
