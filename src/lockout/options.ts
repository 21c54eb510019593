// guard's lockout flags as a policy: --lockout-after N, --lockout-window DURATION (default 10m),
// --lockout-for DURATION (default 15m), --lockout-by address|role, --ban-address-after N,
// --exclude-address ADDR|CIDR (repeatable), and guard's own --exclude-role. Bad values are exit 2.
import { usageError } from '../errors.js';
import { durationFlag, numberFlag } from '../util/flags.js';
import { parseRanges } from './address.js';
import { MAX_THRESHOLD } from './policy.js';
import { MAX_LOCKOUT_MS } from './schema.js';
import { DEFAULT_FOR_MS, DEFAULT_WINDOW_MS, type LockoutPolicy } from './types.js';

export interface LockoutFlags {
  lockoutAfter?: string;
  lockoutWindow?: string;
  lockoutFor?: string;
  lockoutBy?: string;
  banAddressAfter?: string;
  excludeRole?: string[];
  excludeAddress?: string[];
}

/** The policy the flags ask for; null when neither --lockout-after nor --ban-address-after is given (no lockouts). */
export function lockoutPolicy(f: LockoutFlags): LockoutPolicy | null {
  const count = { integer: true, min: 1, max: MAX_THRESHOLD };
  const after = numberFlag(f.lockoutAfter, '--lockout-after', count) ?? null;
  const ban = numberFlag(f.banAddressAfter, '--ban-address-after', count) ?? null;
  if (after === null && ban === null) {
    const stray = (['lockoutWindow', 'lockoutFor', 'lockoutBy', 'excludeAddress'] as const).find((k) => f[k] !== undefined);
    if (stray)
      throw usageError(`--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --lockout-after N or --ban-address-after N`);
    return null;
  }
  const by = f.lockoutBy ?? 'address';
  if (by !== 'address' && by !== 'role')
    throw usageError(
      `invalid --lockout-by: "${by}"`,
      'address (the default: one role from one address) or role (the role everywhere, NOLOGIN)',
    );
  const windowMs =
    f.lockoutWindow === undefined ? DEFAULT_WINDOW_MS : durationFlag(f.lockoutWindow, '--lockout-window', { min: 1, max: 86_400 }) * 1000;
  const forMs =
    f.lockoutFor === undefined
      ? DEFAULT_FOR_MS
      : durationFlag(f.lockoutFor, '--lockout-for', { min: 1, max: MAX_LOCKOUT_MS / 1000 }) * 1000;
  const excludeAddresses = f.excludeAddress ?? [];
  parseRanges(excludeAddresses);
  return { after, windowMs, forMs, by, banAddressAfter: ban, excludeRoles: f.excludeRole ?? [], excludeAddresses };
}
