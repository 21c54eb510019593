// Client addresses as the lockout engine keys, matches and writes them: one canonical text per
// address (ipaddr.js), exclusions by CIDR, and the pg_hba.conf address field (/32, /128).
import ipaddr from 'ipaddr.js';
import { usageError } from '../errors.js';

/**
 * The canonical text of an IP address, or null when it is none (a host name, from log_hostname).
 * An IPv4-mapped IPv6 address stays IPv6: an IPv4 rule never matches such a client (hba.c), so the
 * reject line must be IPv6 too.
 */
export function canonicalAddress(text: string | null): string | null {
  if (text === null) return null;
  const t = text.trim();
  if (ipaddr.IPv4.isValidFourPartDecimal(t)) return ipaddr.IPv4.parse(t).toString();
  // a zone index (fe80::1%eth0) cannot be written in pg_hba.conf: not an address the engine keys
  if (!t.includes('%') && ipaddr.IPv6.isValid(t)) return ipaddr.IPv6.parse(t).toString();
  return null;
}

/** The address field of a reject line for exactly this address: A/32 or A/128. */
export function hbaAddress(address: string): string {
  const a = ipaddr.parse(address);
  return `${a.toString()}/${a.kind() === 'ipv4' ? 32 : 128}`;
}

/** A parsed exclusion list: addresses and CIDR ranges. */
export type AddressRanges = readonly [ipaddr.IPv4 | ipaddr.IPv6, number][];

/** `--exclude-address` values: an address or a CIDR range each; anything else is exit 2. */
export function parseRanges(values: readonly string[], flag = '--exclude-address'): AddressRanges {
  return values.map((v) => {
    const t = v.trim();
    if (ipaddr.isValidCIDR(t)) {
      const [addr, prefix] = ipaddr.parseCIDR(t);
      if (addr.kind() === 'ipv6' || ipaddr.IPv4.isValidFourPartDecimal(t.replace(/\/\d+$/, ''))) return [addr, prefix];
    }
    const one = canonicalAddress(t);
    if (one) {
      const a = ipaddr.parse(one);
      return [a, a.kind() === 'ipv4' ? 32 : 128];
    }
    throw usageError(`invalid ${flag}: "${v}"`, 'an IP address or a CIDR range, e.g. 10.1.2.3, 10.0.0.0/8, ::1, fd00::/8');
  });
}

/** Whether a canonical address is in one of the ranges (an IPv4-mapped IPv6 address matches IPv4 ranges too: excluding never harms). */
export function inRanges(address: string, ranges: AddressRanges): boolean {
  const a = ipaddr.parse(address);
  const v4 = a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : null;
  return ranges.some(
    ([net, prefix]) => (net.kind() === a.kind() && a.match(net, prefix)) || (v4 !== null && net.kind() === 'ipv4' && v4.match(net, prefix)),
  );
}
