// Pure pieces behind the false-containment fixes (the integration test hba-false-containment makes
// the real logins): NUL bytes read as the server reads them, whole-second mtimes, and the expired
// role's "without a password" decision over the rules.
import { describe, expect, it } from 'vitest';
import { changedAfterLoad, MTIME_LAG_S } from '../../src/checks/hba-reload.js';
import { rejectedEverywhere } from '../../src/hba/evaluate.js';
import { rulesFromLines } from '../../src/hba/raw-rules.js';
import { tokenizeHba } from '../../src/hba/tokenize.js';

const MAIN = '/etc/pg/pg_hba.conf';
const lines = (text: string) => tokenizeHba(MAIN, { files: new Map([[MAIN, text]]), dirs: new Map() }, { includes: true }).lines;
const shown = (text: string) => lines(text).map((l) => [l.lineNumber, l.fields.map((f) => f.map((t) => t.text).join(',')).join(' ')]);

describe('a NUL byte, as pg_get_line_append (fgets + strlen) reads it', () => {
  it('drops the rest of its line and joins the next one; later lines are numbered one less', () => {
    const text = '#\0\nhost all all 0.0.0.0/0 reject\nhost all "all" 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 trust\n';
    expect(shown(text)).toEqual([
      [2, 'host all all 0.0.0.0/0 reject'],
      [3, 'host all all 0.0.0.0/0 trust'],
    ]);
    expect(lines(text)[0]!.fields[2]![0]!.quoted).toBe(true);
  });

  it('mid-line: the text before it is kept and the next line appended to it', () => {
    expect(shown('host all\0 junk\n alice 127.0.0.1/32 trust\nlocal all all peer\n')).toEqual([
      [1, 'host all alice 127.0.0.1/32 trust'],
      [2, 'local all all peer'],
    ]);
  });

  it('a NUL on the last line, and backslash continuations still count as lines', () => {
    expect(shown('local all \\\nbob trust\nlocal all carol peer\0x')).toEqual([
      [1, 'local all bob trust'],
      [3, 'local all carol peer'],
    ]);
  });
});

describe('changedAfterLoad', () => {
  it('whole-second mtimes in the second of the reload cannot tell', () => {
    expect(changedAfterLoad(100, 100.015, false)).toBeNull();
    expect(changedAfterLoad(101, 100.015, false)).toBe(true);
    expect(changedAfterLoad(99, 100.015, false)).toBe(false);
  });
  it('sub-second mtimes: after is pending, just before (a coarse clock) cannot tell, well before is not', () => {
    expect(changedAfterLoad(100.02, 100.015, true)).toBe(true);
    expect(changedAfterLoad(100.01, 100.015, true)).toBeNull();
    expect(changedAfterLoad(100.015 - MTIME_LAG_S - 0.001, 100.015, true)).toBe(false);
  });
});

describe('rejectedEverywhere for an expired role (passwordless)', () => {
  const rules = (text: string) => rulesFromLines(lines(text));
  const input = { role: 'bob', memberOf: [], replication: false, regexTokens: true, passwordless: true };
  it('password lines are no way in; a trust line is, even where its address is undecidable', () => {
    expect(rejectedEverywhere({ ...input, rules: rules('host all bob 127.0.0.1/32 scram-sha-256\n') }).rejected).toBe(true);
    const r = rejectedEverywhere({ ...input, rules: rules('host all bob samehost trust\n') });
    expect(r).toMatchObject({ rejected: false, reason: expect.stringMatching(/line 1 .*trust.* without a password/) });
    expect(rejectedEverywhere({ ...input, rules: rules('host all /^bo 127.0.0.1/32 trust\n') }).rejected).toBe(false);
  });
});
