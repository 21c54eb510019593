// Tokenized pg_hba.conf lines -> rules (as parse_hba_line reads the fields), and the line-by-line
// comparison with pg_hba_file_rules. Pure. The view stays the authority for errors and order; the
// file supplies what the view drops: whether each token was quoted.
import ipaddr from 'ipaddr.js';
import type { HbaRule } from './types.js';
import type { TokenizedLine } from './tokenize.js';

/** A rule from one tokenized line; `error` is set when the line cannot be read as a rule here. */
export function ruleFromLine(line: TokenizedLine, ruleNumber: number | null): HbaRule {
  const f = line.fields;
  const first = (i: number) => f[i]?.[0]?.text ?? null;
  const base: HbaRule = {
    lineNumber: line.lineNumber,
    ruleNumber,
    fileName: line.fileName,
    type: first(0),
    database: (f[1] ?? []).map((t) => t.text),
    userName: (f[2] ?? []).map((t) => t.text),
    address: null,
    netmask: null,
    authMethod: null,
    options: null,
    error: line.error,
    quoted: { database: (f[1] ?? []).map((t) => t.quoted), userName: (f[2] ?? []).map((t) => t.quoted) },
  };
  if (line.error !== null) return base;
  if (f.length < 4) return { ...base, error: 'end-of-line before authentication method' };
  let next = 3;
  if (base.type !== 'local') {
    const addr = f[3]![0]!;
    next = 4;
    if (!addr.quoted && (addr.text === 'all' || addr.text === 'samehost' || addr.text === 'samenet')) base.address = addr.text;
    else if (addr.text.includes('/')) {
      // CIDR: the view shows the address and the netmask the prefix stands for
      const [ip, len] = addr.text.split('/') as [string, string];
      const parsed = parseIp(ip);
      const bits = Number(len);
      if (!parsed || !/^\d+$/.test(len) || bits > (parsed.kind() === 'ipv4' ? 32 : 128))
        return { ...base, error: `invalid IP address "${addr.text}"` };
      base.address = parsed.toString();
      base.netmask = (parsed.kind() === 'ipv4' ? ipaddr.IPv4 : ipaddr.IPv6).subnetMaskFromPrefixLength(bits).toString();
    } else if (parseIp(addr.text)) {
      // a bare numeric address takes its netmask from the next field
      base.address = parseIp(addr.text)!.toString();
      base.netmask = first(4);
      next = 5;
    } else base.address = addr.text; // a host name (or a quoted keyword, which is a host name)
  }
  let method = first(next);
  if (method === null) return { ...base, error: 'end-of-line before authentication method' };
  if (method === 'ident' && base.type === 'local') method = 'peer'; // parse_hba_line: ident over a socket is peer
  const options = f.slice(next + 1).flatMap((field) => field.map((t) => t.text));
  return { ...base, authMethod: method, options: options.length ? options : null };
}

function parseIp(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  try {
    if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
    if (ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text);
  } catch {
    /* not an address */
  }
  return null;
}

/** Every tokenized line as a rule, numbered in the order PostgreSQL tries them. */
export function rulesFromLines(lines: TokenizedLine[]): HbaRule[] {
  let n = 0;
  return lines.map((l) => (l.error === null ? ruleFromLine(l, ++n) : ruleFromLine(l, null)));
}

const sameAddress = (a: string | null, b: string | null) =>
  a === b || (a !== null && b !== null && parseIp(a) !== null && parseIp(a)?.toNormalizedString() === parseIp(b)?.toNormalizedString());

function differences(file: HbaRule, view: HbaRule): string[] {
  const out: string[] = [];
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  if (file.type !== view.type) out.push(`type ${file.type ?? '?'} here, ${view.type ?? '?'} in the view`);
  if (!same(file.database, view.database)) out.push(`databases ${file.database.join(',')} here, ${view.database.join(',')} in the view`);
  if (!same(file.userName, view.userName)) out.push(`users ${file.userName.join(',')} here, ${view.userName.join(',')} in the view`);
  if (!sameAddress(file.address, view.address) || !sameAddress(file.netmask, view.netmask))
    out.push(
      `address ${[file.address, file.netmask].filter(Boolean).join(' ')} here, ${[view.address, view.netmask].filter(Boolean).join(' ')} in the view`,
    );
  if (file.authMethod !== view.authMethod) out.push(`method ${file.authMethod ?? '?'} here, ${view.authMethod ?? '?'} in the view`);
  return out;
}

export interface MergeResult {
  /** The view's rules, with the file's quoting where both agree on the line. */
  rules: HbaRule[];
  mismatches: { line: number; fileName: string | null; detail: string }[];
}

/**
 * Compare the parsed file with pg_hba_file_rules line by line (valid rows only: error rows hold no
 * tokens to compare) and take the quoting from the file where they agree. A line that disagrees
 * keeps no quoting, so its keyword-looking tokens stay undecidable rather than guessed.
 */
export function mergeWithView(view: HbaRule[], parsed: HbaRule[], mainFile: string): MergeResult {
  const key = (r: HbaRule) => `${r.fileName ?? mainFile}\u0000${r.lineNumber}`;
  const fromFile = new Map(parsed.map((r) => [key(r), r]));
  const mismatches: MergeResult['mismatches'] = [];
  const seen = new Set<string>();
  const rules = view.map((v) => {
    const k = key(v);
    seen.add(k);
    if (v.error !== null) return v;
    const p = fromFile.get(k);
    if (!p) {
      mismatches.push({ line: v.lineNumber, fileName: v.fileName, detail: 'in the view, but no such rule in the file as read here' });
      return v;
    }
    if (p.error !== null) {
      mismatches.push({ line: v.lineNumber, fileName: v.fileName, detail: `in the view, but not read as a rule here: ${p.error}` });
      return v;
    }
    const diff = differences(p, v);
    if (diff.length) {
      mismatches.push({ line: v.lineNumber, fileName: v.fileName, detail: diff.join('; ') });
      return v;
    }
    return { ...v, quoted: p.quoted! };
  });
  for (const p of parsed) {
    if (p.error === null && !seen.has(key(p)))
      mismatches.push({ line: p.lineNumber, fileName: p.fileName, detail: 'a rule in the file as read here, but not in the view' });
  }
  return { rules, mismatches };
}
