// guard's lockout flags (src/lockout/options.ts): defaults, ranges, refusals (exit 2).
import { describe, expect, it } from 'vitest';
import { lockoutPolicy } from '../../src/lockout/options.js';
import { Tally } from '../../src/lockout/policy.js';
import { testPolicy } from '../helpers/lockout.js';

const refused = (f: Parameters<typeof lockoutPolicy>[0]) => {
  try {
    lockoutPolicy(f);
  } catch (err) {
    expect((err as { exitCode?: number }).exitCode).toBe(2);
    return (err as Error).message;
  }
  throw new Error('not refused');
};

describe('lockout flags', () => {
  it('no lockout flag: no policy; the defaults: 10m window, 15m lockout, by address', () => {
    expect(lockoutPolicy({ excludeRole: ['x'] })).toBeNull();
    expect(lockoutPolicy({ lockoutAfter: '5' })).toEqual(testPolicy({ after: 5 }));
    expect(
      lockoutPolicy({
        banAddressAfter: '20',
        lockoutWindow: '1m30s',
        lockoutFor: '2h',
        excludeAddress: ['10.0.0.0/8'],
        excludeRole: ['bg'],
      }),
    ).toEqual(
      testPolicy({
        after: null,
        windowMs: 90_000,
        forMs: 7_200_000,
        banAddressAfter: 20,
        excludeRoles: ['bg'],
        excludeAddresses: ['10.0.0.0/8'],
      }),
    );
  });

  it('refuses bad values in one line', () => {
    expect(refused({ lockoutAfter: '0' })).toMatch(/invalid --lockout-after: "0": an integer from 1 to 1000/);
    expect(refused({ lockoutAfter: '3', lockoutBy: 'user' })).toMatch(/invalid --lockout-by: "user"/);
    expect(refused({ lockoutAfter: '3', lockoutFor: '400d' })).toMatch(/invalid --lockout-for/);
    expect(refused({ lockoutAfter: '3', excludeAddress: ['monitoring.internal'] })).toMatch(
      /invalid --exclude-address: "monitoring.internal"/,
    );
    expect(refused({ lockoutWindow: '5m' })).toMatch(/--lockout-window needs --lockout-after N or --ban-address-after N/);
  });

  it('bans only: no pair is ever counted (a ban-only policy keeps no per-pair times)', () => {
    const t = new Tally(lockoutPolicy({ banAddressAfter: '3' })!);
    const f = (u: string) => ({
      at: new Date().toISOString(),
      user: u,
      database: null,
      address: '10.0.0.1',
      sqlstate: '28P01' as const,
      kind: 'password' as const,
      message: '',
      hbaLine: null,
      pid: null,
    });
    const d = t.decide([f('a'), f('a'), f('a')], [], Date.now());
    expect(d.lock.map((l) => l.kind)).toEqual(['address_ban']);
    expect(t.tracked()).toEqual({ pairs: 0, roles: 0, addresses: 0 });
  });
});
