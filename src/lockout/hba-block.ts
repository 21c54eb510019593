// The lockout block in pg_hba.conf, pure: its lines, and the file with the block as it should be.
// One block per file, apart from cutoff's per-role blocks and marked differently (`# pgrevoke
// lockout BEGIN` / `END`), so neither's removal touches the other's lines. It goes at the top
// (first match wins: below an accepting line a reject never fires), and each rule carries its
// lockout's id and end, so a rule of a lockout this state directory does not know (another
// operator's, another OS user's) is kept while its time runs and dropped once it is past.
import { hbaQuote } from '../playbook/hba-file.js';
import { hbaAddress } from './address.js';
import type { Lockout } from './types.js';

export const BLOCK_BEGIN = '# pgrevoke lockout BEGIN';
export const BLOCK_END = '# pgrevoke lockout END';
const BEGIN_NOTE = 'failed-login lockouts: `pgrevoke lockouts` lists them, `pgrevoke unlock` lifts one';

/** A rule's trailing comment: which lockout and until when (hba.c reads `#` outside quotes as a comment). */
const RULE_TAG = /# pgrevoke lockout ([0-9a-f]{16}) until (\S+)$/;

/**
 * The reject line of an address lockout or ban. `all,replication`, as cutoff's: a physical
 * replication login is refused too. `host` matches TCP with and without TLS.
 */
export function lockoutRule(l: Pick<Lockout, 'id' | 'kind' | 'role' | 'address' | 'until'>): string {
  if (l.kind === 'role' || l.address === null) throw new Error(`lockout ${l.id} is not written in pg_hba.conf`);
  const user = l.kind === 'address_ban' ? 'all' : hbaQuote(l.role!);
  return `host all,replication ${user} ${hbaAddress(l.address)} reject # pgrevoke lockout ${l.id} until ${l.until}`;
}

export interface BlockRule {
  line: string;
  id: string;
  until: string;
}

interface Parsed {
  lines: string[];
  /** [begin, end] line indexes of each lockout block. */
  blocks: [number, number][];
}

/** The file's lines and its lockout blocks; throws on a marker without its partner (an edit by hand: left to a human). */
function parse(content: string, file: string): Parsed {
  const lines = content.split('\n');
  const blocks: [number, number][] = [];
  let open = -1;
  for (const [i, l] of lines.entries()) {
    if (l === BLOCK_BEGIN || l.startsWith(`${BLOCK_BEGIN} `)) {
      if (open >= 0) throw brokenBlock(file, open + 1, 'a second BEGIN before its END');
      open = i;
    } else if (l === BLOCK_END) {
      if (open < 0) throw brokenBlock(file, i + 1, 'an END without a BEGIN');
      blocks.push([open, i]);
      open = -1;
    }
  }
  if (open >= 0) throw brokenBlock(file, open + 1, 'a BEGIN without its END');
  return { lines, blocks };
}

function brokenBlock(file: string, line: number, what: string): Error {
  return new Error(
    `${file} line ${line}: the pgrevoke lockout block was edited by hand (${what}); fix or remove its markers, then the lockouts are written again`,
  );
}

/** The rules in the file's lockout blocks, with their ids and ends. */
export function blockRules(content: string, file = 'pg_hba.conf'): BlockRule[] {
  const { lines, blocks } = parse(content, file);
  return blocks.flatMap(([b, e]) =>
    lines.slice(b + 1, e).flatMap((line) => {
      const m = RULE_TAG.exec(line);
      return m ? [{ line, id: m[1]!, until: m[2]! }] : [];
    }),
  );
}

/** Lines before the block that cannot admit anyone: blank, comments, other reject lines (cutoff's). */
function harmless(line: string): boolean {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return true;
  // an include's file name may be `reject`; the rule's method is its last word before a comment
  if (/^include(_dir|_if_exists)?\s/.test(t)) return false;
  let quoted = false;
  let end = t.length;
  for (let i = 0; i < t.length && end === t.length; i++) {
    if (t[i] === '"') quoted = !quoted;
    else if (t[i] === '#' && !quoted) end = i;
  }
  return /\sreject$/.test(t.slice(0, end).trimEnd());
}

export interface BlockEdit {
  content: string;
  /** The block written (its exact lines), empty when the block was removed. */
  block: string[];
  /** Line numbers (1-based) of its rules in the new file. */
  ruleLines: number[];
}

/**
 * The file with one lockout block holding `rules` (plus the foreign rules still running), at the
 * top; null when the file has that already. `known`: ids this state directory knows (their rules
 * are `rules` or gone); `now` decides which foreign rules are past.
 */
export function withLockoutBlock(
  content: string,
  rules: readonly string[],
  known: ReadonlySet<string>,
  now: Date,
  file = 'pg_hba.conf',
): BlockEdit | null {
  const { lines, blocks } = parse(content, file);
  const foreign = blockRules(content, file)
    .filter((r) => !known.has(r.id) && Date.parse(r.until) > now.getTime())
    .map((r) => r.line);
  const want = [...rules, ...foreign.filter((f) => !rules.includes(f))];
  const current = blocks.length === 1 ? lines.slice(blocks[0]![0] + 1, blocks[0]![1]) : null;
  const onTop = blocks.length === 1 && lines.slice(0, blocks[0]![0]).every(harmless);
  if (want.length === 0 && blocks.length === 0) return null;
  if (current && onTop && current.length === want.length && current.every((l, i) => l === want[i])) return null;
  const rest = lines.filter((_, i) => !blocks.some(([b, e]) => i >= b && i <= e));
  if (want.length === 0) return { content: rest.join('\n'), block: [], ruleLines: [] };
  const block = [`${BLOCK_BEGIN} ${now.toISOString()}: ${BEGIN_NOTE}`, ...want, BLOCK_END];
  return { content: [...block, ...rest].join('\n'), block, ruleLines: want.map((_, i) => i + 2) };
}

/**
 * The file's one lockout block as it stands, as an edit that changes nothing: for the reload and
 * check of rules written by a pass that could not check them (its reload timed out). Null without
 * exactly one block.
 */
export function currentBlock(content: string, file = 'pg_hba.conf'): BlockEdit | null {
  const { lines, blocks } = parse(content, file);
  if (blocks.length !== 1) return null;
  const [b, e] = blocks[0]!;
  return { content, block: lines.slice(b, e + 1), ruleLines: lines.slice(b + 1, e).map((_, i) => b + i + 2) };
}

/** Where the rules of a block already in the file are (1-based), for a check without an edit. */
export function ruleLinesIn(content: string): number[] {
  const lines = content.split('\n');
  return lines.flatMap((l, i) => (RULE_TAG.test(l) ? [i + 1] : []));
}
