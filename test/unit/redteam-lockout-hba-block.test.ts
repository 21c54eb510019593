// Red team (issue 16): the lockout block must stay above every line that can admit anyone (first
// match wins). A line counts as harmless above it only when it is a reject rule; a comment that
// ends in the word, or an include of a file named `reject`, is no reject rule.
import { describe, expect, it } from 'vitest';
import { withLockoutBlock } from '../../src/lockout/hba-block.js';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const RULE = 'host all,replication "alice" 10.1.2.3/32 reject # pgrevoke lockout 3f2a9c0d41b7e655 until 2026-03-01T12:15:00.000Z';
const block = [`# pgrevoke lockout BEGIN 2026-03-01T11:00:00.000Z: x`, RULE, '# pgrevoke lockout END'];

describe('red team: what sits above the lockout block', () => {
  it.each(['host all all 10.0.0.0/8 trust # TODO: reject', 'host all all 10.0.0.0/8 scram-sha-256 #reject', 'include reject'])(
    '%s above the block: the block is moved back on top',
    (line) => {
      const edit = withLockoutBlock([line, ...block, 'local all all peer'].join('\n'), [RULE], new Set(['3f2a9c0d41b7e655']), NOW);
      expect(edit?.content.split('\n').indexOf(line)).toBe(3);
    },
  );

  it.each(['host all "x" all reject', 'local all,replication "a # b" reject', 'host all all 10.9.9.9/32 reject # cutoff', ''])(
    '%s above the block: left there, no edit',
    (line) => {
      expect(withLockoutBlock([line, ...block, 'local all all peer'].join('\n'), [RULE], new Set(['3f2a9c0d41b7e655']), NOW)).toBeNull();
    },
  );
});
