// What an unknown role name was probably meant to be: without SQL quotes, or several arguments.
import { describe, expect, it } from 'vitest';
import { readingsOf, unknownRoleHint } from '../../src/inspect/resolve-role.js';

describe('readings of an unknown role name', () => {
  it('strips one pair of SQL quotes (undoubling) and splits a comma list', () => {
    expect(readingsOf('"Bob"')).toEqual({ unquoted: 'Bob', parts: [] });
    expect(readingsOf('"we""ird"')).toEqual({ unquoted: 'we"ird', parts: [] });
    expect(readingsOf("'bob'")).toEqual({ unquoted: 'bob', parts: [] });
    expect(readingsOf('"Bob')).toEqual({ unquoted: undefined, parts: [] });
    expect(readingsOf('""')).toEqual({ unquoted: undefined, parts: [] });
    expect(readingsOf('mallory,alice')).toEqual({ unquoted: undefined, parts: ['mallory', 'alice'] });
    expect(readingsOf('mallory, alice,')).toEqual({ unquoted: undefined, parts: ['mallory', 'alice'] });
    expect(readingsOf('a,')).toEqual({ unquoted: undefined, parts: [] });
  });
});

describe('the hint for an unknown role', () => {
  it('SQL quotes around an existing name: names are exact, suggest the bare name', () => {
    const h = unknownRoleHint('"Bob"', new Set(['Bob']), []);
    expect(h).toBe('role names are exact, with no SQL quoting (the quotes were taken as part of the name): did you mean Bob?');
    // a name a shell needs quoted is suggested quoted for the shell
    expect(unknownRoleHint(`"Ops Lead's"`, new Set([`Ops Lead's`]), [])).toContain(`did you mean 'Ops Lead'\\''s'?`);
  });

  it('a comma list of existing roles: one argument each', () => {
    expect(unknownRoleHint('mallory,alice', new Set(['mallory', 'alice']), [])).toBe(
      'a comma is part of a role name, not a list: give each role as an argument of its own (mallory alice)',
    );
    expect(unknownRoleHint('mallory,nobody', new Set(['mallory']), [])).toBe(
      'a comma is part of a role name, not a list: give each role as an argument of its own (mallory nobody); no role is named nobody',
    );
  });

  it('otherwise the near matches, or the exact-name rule', () => {
    expect(unknownRoleHint('"Bob"', new Set(), [])).toBe('role names are exact and case-sensitive, as in pg_roles.rolname');
    expect(unknownRoleHint('bob', new Set(), ['Bob'])).toBe('role names are exact and case-sensitive; did you mean "Bob"?');
    expect(unknownRoleHint('x,y', new Set(), ['x'])).toBe('role names are exact and case-sensitive; did you mean "x"?');
  });
});
