// The login failures PostgreSQL logs, as templates of the exact message texts (14..18: the same
// texts in every major; checked against each major's binary and a real server, docs/server-log.md).
// The user and database in them are the client's to choose: they may hold quotes, `", user "`,
// newlines. So a template is matched by its fixed parts only, anchored at both ends, and a
// message that can be split in more than one way yields every split; the caller decides with the
// user the log names in a structured field or the prefix. No pattern ever runs over a name.
import type { AuthFailureKind } from './types.js';

/** A slot's content rule: `host` is what getnameinfo(NI_NUMERICHOST) writes (never a quote), `encryption` a fixed word. */
type Slot = 'user' | 'database' | 'host' | 'encryption' | 'method';
type Part = string | Slot;

export interface Template {
  kind: AuthFailureKind;
  sqlstate: '28P01' | '28000';
  /** Literal text and slots, alternating, starting and ending with literal text (possibly ''). */
  parts: Part[];
}

const ENCRYPTION = new Set(['no encryption', 'SSL encryption', 'GSS encryption']);
/** auth.c auth_failed(): one text per method (OAuth bearer from 18). */
const METHODS = new Set(['"trust"', 'Ident', 'Peer', 'GSSAPI', 'SSPI', 'PAM', 'BSD', 'LDAP', 'certificate', 'RADIUS', 'OAuth bearer']);

const T = (kind: AuthFailureKind, sqlstate: Template['sqlstate'], ...parts: Part[]): Template => ({ kind, sqlstate, parts });

/** ClientAuthentication()'s pg_hba.conf messages share their tail: `host "H", user "U"[, database "D"], <encryption>`. */
const hba = (lead: string, database: boolean): Part[] => [
  lead,
  'host',
  '", user "',
  'user',
  ...(database ? ['", database "', 'database'] : []),
  '", ',
  'encryption',
  '',
];

export const TEMPLATES: Template[] = [
  // auth.c auth_failed(), password, md5 and scram-sha-256 alike
  T('password', '28P01', 'password authentication failed for user "', 'user', '"'),
  // auth.c ClientAuthentication(), uaImplicitReject
  T('no_hba_entry', '28000', ...hba('no pg_hba.conf entry for host "', true)),
  T('no_hba_entry', '28000', ...hba('no pg_hba.conf entry for replication connection from host "', false)),
  // auth.c ClientAuthentication(), uaReject
  T('hba_reject', '28000', ...hba('pg_hba.conf rejects connection for host "', true)),
  T('hba_reject', '28000', ...hba('pg_hba.conf rejects replication connection for host "', false)),
  // miscinit.c InitializeSessionUserId()
  T('nologin', '28000', 'role "', 'user', '" is not permitted to log in'),
  T('role_missing', '28000', 'role "', 'user', '" does not exist'),
  // auth_failed() for the other methods, and its two fallbacks
  T('other', '28000', '', 'method', ' authentication failed for user "', 'user', '"'),
  T('other', '28000', 'authentication failed for user "', 'user', '": host rejected'),
  T('other', '28000', 'authentication failed for user "', 'user', '": invalid authentication method'),
  T('other', '28000', 'certificate authentication failed for user "', 'user', '": client certificate contains no user name'),
  T('other', '28000', 'certificate authentication failed for user "', 'user', '": unable to retrieve subject DN'),
];

export type Slots = Partial<Record<Slot, string>>;

const MAX_SPLITS = 16;

function slotOk(slot: Slot, value: string): boolean {
  if (slot === 'host') return value.length > 0 && !value.includes('"');
  if (slot === 'encryption') return ENCRYPTION.has(value);
  if (slot === 'method') return METHODS.has(value);
  return true;
}

/** Every way `text` is `parts` (literal parts matched exactly, slots by their rule), at most MAX_SPLITS. */
function splits(text: string, parts: Part[], from: number, slots: Slots, out: Slots[]): void {
  if (out.length >= MAX_SPLITS) return;
  const [lit, slot, ...rest] = parts as [string, Slot | undefined, ...Part[]];
  if (!text.startsWith(lit, from)) return;
  const at = from + lit.length;
  if (slot === undefined) {
    if (at === text.length) out.push(slots);
    return;
  }
  const next = rest[0] as string;
  if (rest.length === 1 && next !== '') {
    // the last slot: it ends where the closing text starts, at the very end
    const end = text.length - next.length;
    if (end >= at && text.endsWith(next) && slotOk(slot, text.slice(at, end))) out.push({ ...slots, [slot]: text.slice(at, end) });
    return;
  }
  // the slot ends at some occurrence of the next literal ('' only closes the last slot, at the end)
  for (let end = next === '' ? text.length : text.indexOf(next, at); end >= 0; end = next === '' ? -1 : text.indexOf(next, end + 1)) {
    const value = text.slice(at, end);
    if (slotOk(slot, value)) splits(text, rest, end, { ...slots, [slot]: value }, out);
    if (out.length >= MAX_SPLITS) return;
  }
}

export interface TemplateMatch {
  template: Template;
  /** Every split of the message (one, unless a name holds a template's own fixed text). */
  splits: Slots[];
}

/** The template a message is, with its splits; null for any other message. */
export function matchTemplate(message: string): TemplateMatch | null {
  for (const template of TEMPLATES) {
    const out: Slots[] = [];
    splits(message, template.parts, 0, {}, out);
    if (out.length) return { template, splits: out };
  }
  return null;
}

const ROLE_MISSING_HEAD = 'Role "';
const ROLE_MISSING_TAIL = '" does not exist.';

/** auth.c's DETAIL for a password login of a role that does not exist: `Role "x" does not exist.` (first line of the DETAIL). */
export function detailSaysRoleMissing(detail: string | null, user: string): boolean {
  if (!detail) return false;
  const exact = ROLE_MISSING_HEAD + user + ROLE_MISSING_TAIL;
  return detail === exact || detail.startsWith(`${exact}\n`);
}

/**
 * The pg_hba.conf line the connection matched: auth_failed() appends, as the DETAIL's last line,
 * `Connection matched pg_hba.conf line N: "..."` (14, 15) or `Connection matched file "F" line N: "..."`
 * (16+, which added include files). Only the last line: a name in an earlier one may hold the text.
 */
export function hbaLineOfDetail(detail: string | null): number | null {
  if (!detail) return null;
  const last = detail.slice(detail.lastIndexOf('\n') + 1);
  const old = 'Connection matched pg_hba.conf line ';
  let rest: string | null = null;
  if (last.startsWith(old)) rest = last.slice(old.length);
  else if (last.startsWith('Connection matched file "')) {
    // the file name is the administrator's, not the client's
    const at = last.indexOf('" line ', 'Connection matched file "'.length);
    if (at >= 0) rest = last.slice(at + '" line '.length);
  }
  const m = rest === null ? null : /^(\d{1,9}): "/.exec(rest);
  return m ? Number(m[1]) : null;
}
