// The one role-name check (src/util/role-name.ts) and the roles-file format built on it: what
// PostgreSQL would cut or cannot take is refused, naming where it came from.
import { describe, expect, it } from 'vitest';
import { checkRoleName, MAX_ROLE_NAME_BYTES, roleNameProblem } from '../../src/util/role-name.js';
import { parseFleet } from '../../src/fleet/file.js';
import { parseRolesFile } from '../../src/util/roles-file.js';
import { usage } from '../helpers/errors.js';

describe('roleNameProblem', () => {
  it('takes any name up to 63 bytes as written, whatever its characters', () => {
    expect(MAX_ROLE_NAME_BYTES).toBe(63);
    for (const ok of ['x'.repeat(63), 'UPPER', 'a"b', "o'neil", 'with space', 'é'.repeat(31) + 'x', '日本'.repeat(10) + 'abc'])
      expect(roleNameProblem(ok), ok).toBeNull();
  });

  it('counts bytes, not characters: 64 bytes is one too many', () => {
    expect(roleNameProblem('x'.repeat(64))).toMatch(/^it is 64 bytes long; PostgreSQL names are at most 63 bytes/);
    // 32 characters, 64 bytes in UTF-8
    expect(roleNameProblem('é'.repeat(32))).toMatch(/^it is 64 bytes long/);
    expect(roleNameProblem('日'.repeat(22))).toMatch(/^it is 66 bytes long/);
  });

  it('refuses empty names, NUL bytes and the replacement character of bad UTF-8', () => {
    expect(roleNameProblem('')).toBe('an empty role name');
    expect(roleNameProblem('ev\0e')).toBe('it contains a NUL byte');
    expect(roleNameProblem('ev\uFFFDe')).toMatch(/not valid UTF-8/);
  });
});

describe('checkRoleName', () => {
  it('returns the name, or a usage error (exit 2) of one line saying where and why', () => {
    expect(checkRoleName('mallory', '--deny')).toBe('mallory');
    const e = usage(() => checkRoleName('ev\0e', 'cutoff <role>'));
    expect(e.message).toBe('cutoff <role>: role name "ev\\u0000e" refused: it contains a NUL byte');
    expect(e.message).not.toContain('\n');
    expect(e.hint).toBeUndefined();
  });
});

describe('parseRolesFile', () => {
  it('one name per line; blanks, # comments and duplicates skipped; CRLF and surrounding spaces dropped', () => {
    expect(parseRolesFile('# roles\nmallory\r\n\n  eve  \n#bob\nMallory\nmallory', 'roles file f')).toEqual(['mallory', 'eve', 'Mallory']);
    expect(parseRolesFile(Buffer.from('x'.repeat(63) + '\n'), 'roles file f')).toEqual(['x'.repeat(63)]);
  });

  it('refuses the whole file at the first bad line, naming the file and the line', () => {
    expect(usage(() => parseRolesFile(Buffer.from('ok\nev\0e\n'), 'deny file /d')).message).toBe(
      'deny file /d line 2: role name "ev\\u0000e" refused: it contains a NUL byte',
    );
    expect(usage(() => parseRolesFile(`# c\n\n${'x'.repeat(64)}\n`, 'roles file /r')).message).toMatch(
      /^roles file \/r line 3: role name "x{64}" refused: it is 64 bytes long/,
    );
  });

  it('reads bytes: invalid UTF-8 is refused by line, not turned into U+FFFD', () => {
    const bytes = Buffer.concat([Buffer.from('ok\n# é fine\nma'), Buffer.from([0xff, 0xfe]), Buffer.from('llory\n')]);
    expect(usage(() => parseRolesFile(bytes, 'deny file /d')).message).toMatch(
      /^deny file \/d line 3: role name ".*" refused: it is not valid UTF-8$/,
    );
    // a lone continuation byte, and a truncated sequence at the end of a line
    expect(() => parseRolesFile(Buffer.from([0x61, 0x80]), 'f')).toThrow(/line 1: .*not valid UTF-8/);
    expect(() => parseRolesFile(Buffer.from([0x61, 0x0a, 0x62, 0xc3, 0x0a]), 'f')).toThrow(/line 2: .*not valid UTF-8/);
  });
});

describe('fleet files', () => {
  it("refuses a node whose user name PostgreSQL would cut, naming the file's line and the node", () => {
    const text = `clusters:\n  - name: billing\n    nodes:\n      - postgresql://${'u'.repeat(64)}@db1:5432/postgres\n`;
    const e = usage(() => parseFleet(text, 'fleet.yaml'));
    expect(e.message).toMatch(/fleet\.yaml.*4/);
    expect(e.message).toContain(
      `cluster "billing", node #1: the connecting user: role name "${'u'.repeat(64)}" refused: it is 64 bytes long`,
    );
    expect(parseFleet(text.replace('u'.repeat(64), 'u'.repeat(63)), 'fleet.yaml').clusters[0]!.nodes).toHaveLength(1);
  });
});
