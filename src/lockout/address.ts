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

/** The address field of a reject line: a network as it is, exactly this address as A/32 or A/128. */
export function hbaAddress(address: string): string {
  if (address.includes('/')) return address;
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

/** IPv4 /24, IPv6 /64 (an IPv4-mapped IPv6 address: its /24, i.e. /120): what one attacker is taken to hold. */
export function prefixLength(address: string): number {
  const a = ipaddr.parse(address);
  if (a.kind() === 'ipv4') return 24;
  return (a as ipaddr.IPv6).isIPv4MappedAddress() ? 120 : 64;
}

/** The network of a canonical address at `bits`, as canonical CIDR text (`10.0.0.0/24`, `2001:db8::/64`). */
export function networkOf(address: string, bits = prefixLength(address)): string {
  const a = ipaddr.parse(address);
  const net =
    a.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${address}/${bits}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${address}/${bits}`);
  return `${net.toString()}/${bits}`;
}

/** The lockout key's address, a canonical address or a canonical network (CIDR text with its network address); null otherwise. */
export function canonicalTarget(text: string | null): string | null {
  if (text === null) return null;
  const t = text.trim();
  if (!t.includes('/')) return canonicalAddress(t);
  const [addr, bits] = t.split('/');
  const a = canonicalAddress(addr!);
  if (a === null || !/^\d{1,3}$/.test(bits!)) return null;
  const n = Number(bits);
  if (n > (ipaddr.parse(a).kind() === 'ipv4' ? 32 : 128)) return null;
  return networkOf(a, n);
}

/** A lockout's address as a range: [network, bits] (a single address: /32 or /128). */
export function targetRange(target: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  if (target.includes('/')) return ipaddr.parseCIDR(target);
  const a = ipaddr.parse(target);
  return [a, a.kind() === 'ipv4' ? 32 : 128];
}

/** Whether a lockout's address (address or network) covers a canonical address or network `inner`. */
export function covers(target: string, inner: string): boolean {
  const [net, bits] = targetRange(target);
  const [a, abits] = targetRange(inner);
  return net.kind() === a.kind() && abits >= bits && a.match(net, bits);
}

/** Whether any excluded range or address overlaps the network (a reject of it would refuse them too). */
export function overlaps(network: string, ranges: AddressRanges, addresses: Iterable<string>): boolean {
  const [net, bits] = targetRange(network);
  const hit = (a: ipaddr.IPv4 | ipaddr.IPv6, b: number) => a.kind() === net.kind() && (a.match(net, bits) || net.match(a, b));
  for (const x of addresses) if (hit(...targetRange(x))) return true;
  return ranges.some(([a, b]) => hit(a, b));
}
