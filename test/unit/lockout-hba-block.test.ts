// The lockout block in pg_hba.conf (src/lockout/hba-block.ts), pure: its rules, its place, cutoff's blocks untouched.
import { describe, expect, it } from 'vitest';
import { rejectBlock, withBlocks, withoutBlock } from '../../src/playbook/hba-file.js';
import { blockRules, BLOCK_BEGIN, BLOCK_END, lockoutRule, withLockoutBlock } from '../../src/lockout/hba-block.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const LATER = '2026-03-01T12:15:00.000Z';
const BASE = 'local all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n';
const pair = { id: 'a'.repeat(16), kind: 'address' as const, role: 'Bob "the" Admin', address: '127.0.0.2', until: LATER };
const ban = { id: 'b'.repeat(16), kind: 'address_ban' as const, role: null, address: '2001:db8::7', until: LATER };

describe('lockout block', () => {
  it('writes a pair quoted as cutoff quotes, a ban for every role, /32 and /128', () => {
    expect(lockoutRule(pair)).toBe(
      `host all,replication "Bob ""the"" Admin" 127.0.0.2/32 reject # pgrevoke lockout ${pair.id} until ${LATER}`,
    );
    expect(lockoutRule(ban)).toBe(`host all,replication all 2001:db8::7/128 reject # pgrevoke lockout ${ban.id} until ${LATER}`);
    expect(() => lockoutRule({ ...pair, kind: 'role' })).toThrow();
  });

  it('goes on top, once; an unchanged file is no edit; the rules are found again by id', () => {
    const rules = [lockoutRule(pair), lockoutRule(ban)];
    const e = withLockoutBlock(BASE, rules, new Set([pair.id, ban.id]), NOW)!;
    const lines = e.content.split('\n');
    expect(lines[0]).toBe(
      `${BLOCK_BEGIN} ${NOW.toISOString()}: failed-login lockouts: \`pgrevoke lockouts\` lists them, \`pgrevoke unlock\` lifts one`,
    );
    expect(lines.slice(1, 4)).toEqual([...rules, BLOCK_END]);
    expect(e.ruleLines).toEqual([2, 3]);
    expect(e.content.endsWith(BASE)).toBe(true);
    expect(withLockoutBlock(e.content, rules, new Set([pair.id, ban.id]), NOW)).toBeNull();
    expect(blockRules(e.content).map((r) => r.id)).toEqual([pair.id, ban.id]);
    // one rule less: the block rewritten in place of the old one, never a second block
    const one = withLockoutBlock(e.content, [rules[1]!], new Set([pair.id, ban.id]), NOW)!;
    expect(one.content.split('\n').filter((l) => l.startsWith(BLOCK_BEGIN))).toHaveLength(1);
    expect(blockRules(one.content).map((r) => r.id)).toEqual([ban.id]);
    // none left: the block goes, the rest of the file is as it was
    expect(withLockoutBlock(one.content, [], new Set([pair.id, ban.id]), NOW)!.content).toBe(BASE);
  });

  it('moves back on top when an accepting line was put above it', () => {
    const rules = [lockoutRule(pair)];
    const e = withLockoutBlock(BASE, rules, new Set([pair.id]), NOW)!;
    const above = `host all all 0.0.0.0/0 trust\n${e.content}`;
    const moved = withLockoutBlock(above, rules, new Set([pair.id]), NOW)!;
    expect(moved.content.split('\n')[1]).toBe(rules[0]);
    // reject lines above (cutoff's block) are harmless: no edit
    const cut = withBlocks(e.content, ['mallory'], NOW)!.content;
    expect(withLockoutBlock(cut, rules, new Set([pair.id]), NOW)).toBeNull();
  });

  it("keeps a rule of a lockout it does not know while its time runs, drops it after; never touches cutoff's blocks", () => {
    const foreign = { ...pair, id: 'c'.repeat(16), address: '127.0.0.9' };
    const withForeign = withLockoutBlock(BASE, [lockoutRule(foreign)], new Set([foreign.id]), NOW)!.content;
    const withCutoff = withBlocks(withForeign, ['mallory'], NOW)!.content;
    const mine = withLockoutBlock(withCutoff, [lockoutRule(pair)], new Set([pair.id]), NOW)!;
    expect(blockRules(mine.content).map((r) => r.id)).toEqual([pair.id, foreign.id]);
    expect(mine.content).toContain(rejectBlock('mallory', NOW).join('\n'));
    const past = withLockoutBlock(mine.content, [lockoutRule(pair)], new Set([pair.id]), new Date(Date.parse(LATER) + 1))!;
    expect(blockRules(past.content).map((r) => r.id)).toEqual([pair.id]);
    // cutoff's restore removes its block and leaves ours
    const restored = withoutBlock(past.content, 'mallory')!;
    expect(blockRules(restored).map((r) => r.id)).toEqual([pair.id]);
    expect(restored).not.toContain('pgrevoke cutoff');
  });

  it('refuses a block whose markers were edited by hand', () => {
    const e = withLockoutBlock(BASE, [lockoutRule(pair)], new Set([pair.id]), NOW)!.content;
    expect(() => withLockoutBlock(e.replace(`${BLOCK_END}\n`, ''), [], new Set(), NOW, '/x/pg_hba.conf')).toThrow(
      /\/x\/pg_hba.conf line 1: the pgrevoke lockout block was edited by hand \(a BEGIN without its END\)/,
    );
    expect(() => blockRules(`${BLOCK_END}\n${BASE}`)).toThrow(/an END without a BEGIN/);
  });
});
