// The findings and errors about an attacker who fills the server or makes roles: pure, from facts.
import { describe, expect, it } from 'vitest';
import { lockedOutReason, slotsOpenTo } from '../../src/checks/reserved-slots.js';
import type { AdministeredRole } from '../../src/checks/types.js';
import { evaluate } from '../../src/inspect/index.js';
import { fullServerHint } from '../../src/pg/connect.js';
import { quietFacts } from '../fixtures/facts.js';

const slots = { maxConnections: 12, superuserReserved: 3, reserved: 2, operatorUsesReserved: false, targetUsesReserved: false };
const oncall = { ...quietFacts().operator, user: 'oncall', superuser: false };

describe('operator.no_reserved_slot', () => {
  it('counts the slots each tier may use', () => {
    expect([slotsOpenTo(slots, 'superuser'), slotsOpenTo(slots, 'reserved'), slotsOpenTo(slots, 'normal')]).toEqual([12, 9, 7]);
    expect(slotsOpenTo({ ...slots, reserved: null }, 'normal')).toBe(9);
  });

  it('a superuser operator keeps superuser_reserved_connections against a normal target, not when there are none', () => {
    expect(lockedOutReason(quietFacts({ connectionSlots: slots }))).toBeNull();
    expect(lockedOutReason(quietFacts({ connectionSlots: { ...slots, superuserReserved: 0, reserved: 0 } }))).toMatch(
      /no slot is kept for superusers alone/,
    );
  });

  it('a plain operator is locked out; a pg_use_reserved_connections member is not, unless the target is one too', () => {
    expect(lockedOutReason(quietFacts({ connectionSlots: slots, operator: oncall }))).toMatch(
      /oncall is neither a superuser nor a member of pg_use_reserved_connections, and "mallory" can take all 7 slots/,
    );
    const member = { ...slots, operatorUsesReserved: true };
    expect(lockedOutReason(quietFacts({ connectionSlots: member, operator: oncall }))).toBeNull();
    expect(lockedOutReason(quietFacts({ connectionSlots: { ...member, targetUsesReserved: true }, operator: oncall }))).toMatch(
      /may use reserved_connections, but "mallory" may too/,
    );
  });

  it("a CONNECTION LIMIT below the operator's slots leaves room; a superuser target ignores its limit", () => {
    const f = quietFacts({ connectionSlots: slots, operator: oncall });
    f.role.connectionLimit = 5;
    expect(lockedOutReason(f)).toBeNull();
    f.role.superuser = true;
    expect(lockedOutReason(f)).toMatch(/is a superuser: it can take every slot/);
  });

  it('the finding names the numbers and the way in that stays', () => {
    const f = evaluate(quietFacts({ connectionSlots: slots, operator: oncall })).findings.find(
      (x) => x.id === 'operator.no_reserved_slot',
    )!;
    expect(f).toMatchObject({ severity: 'high', exposure: false });
    expect(f.detail).toContain('max_connections 12: the last 3 (superuser_reserved_connections) are kept for superusers');
    expect(f.detail).toContain('the 2 before them (reserved_connections)');
    expect(f.remediation).toContain('pgrevoke guard');
  });
});

describe('fullServerHint (53300, from the server wording)', () => {
  it('says which reserved slots are left and who gets them', () => {
    expect(
      fullServerHint('remaining connection slots are reserved for roles with privileges of the "pg_use_reserved_connections" role', 'op'),
    ).toMatch(/"op" is neither; connect as a superuser, or as a member of pg_use_reserved_connections/);
    expect(fullServerHint('remaining connection slots are reserved for roles with the SUPERUSER attribute', 'op')).toMatch(
      /connect as a superuser$/,
    );
    expect(fullServerHint('remaining connection slots are reserved for non-replication superuser connections', 'op')).toMatch(
      /older than PostgreSQL 16/,
    );
    expect(fullServerHint('sorry, too many clients already', 'postgres')).toMatch(/reserved ones included.*pgrevoke guard/);
  });
});

describe('roles.administered / roles.created_unknown', () => {
  const minion: AdministeredRole = {
    oid: 16500,
    name: 'minion',
    via: 'mallory',
    grantor: 'postgres',
    likelyCreated: true,
    canLogin: true,
    sessions: 0,
  };
  const find = (f: ReturnType<typeof quietFacts>, id: string) => evaluate(f).findings.find((x) => x.id === id);

  it('a created role that can log in is exposure; with sessions critical; NOLOGIN and idle is listed, not exposure', () => {
    expect(find(quietFacts({ administeredRoles: { recorded: true, roles: [minion] } }), 'roles.administered')).toMatchObject({
      severity: 'high',
      exposure: true,
      remediation: expect.stringContaining('--include-created'),
    });
    const busy = quietFacts({ administeredRoles: { recorded: true, roles: [{ ...minion, sessions: 2 }] } });
    expect(find(busy, 'roles.administered')).toMatchObject({ severity: 'critical', exposure: true });
    expect(evaluate(busy).verdict).toBe('exposed');
    const shut = quietFacts({ administeredRoles: { recorded: true, roles: [{ ...minion, canLogin: false }] } });
    expect(find(shut, 'roles.administered')).toMatchObject({ severity: 'low', exposure: false });
    expect(find(shut, 'roles.administered')!.detail).toContain(
      '"minion": NOLOGIN, 0 session(s); ADMIN OPTION held by "mallory", granted by postgres',
    );
  });

  it('before 16 a CREATEROLE role gets one "cannot be known" finding; a plain role none; a superuser one on any major', () => {
    const old = quietFacts({ administeredRoles: { recorded: false, roles: [] } });
    expect(find(old, 'roles.created_unknown')).toBeUndefined();
    old.role.createRole = true;
    old.server = { ...old.server, major: 14 };
    expect(evaluate(old).findings.filter((x) => x.id === 'roles.created_unknown')).toHaveLength(1);
    expect(find(old, 'roles.created_unknown')!.detail).toContain('PostgreSQL 14 does not record who created a role');
    const su = quietFacts();
    su.role.createRole = true;
    expect(find(su, 'roles.created_unknown')).toBeUndefined();
    su.role.superuser = true;
    expect(find(su, 'roles.created_unknown')!.detail).toContain("a superuser's CREATE ROLE leaves no record");
  });
});
