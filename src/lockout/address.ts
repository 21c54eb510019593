// Client addresses as the lockout engine keys, merges and writes them: the parsing, canonical text
// and exclusion match are src/util/address.ts's (an exclusion spares both forms of an IPv4 client);
// here the lockout's own: prefixes, networks, and the pg_hba.conf address field (/32, /128), which
// keeps the form the client used (an IPv4 line never matches an IPv4-mapped IPv6 client, hba.c).
import ipaddr from 'ipaddr.js';
import { usageError } from '../errors.js';
import { canonicalAddress, mappedTwin, parseRange, type AddressRange, type Ip } from '../util/address.js';

export { canonicalAddress, inRanges } from '../util/address.js';

/** The address field of a reject line: a network as it is, exactly this address as A/32 or A/128. */
export function hbaAddress(address: string): string {
  if (address.includes('/')) return address;
  const a = ipaddr.parse(address);
  return `${a.toString()}/${a.kind() === 'ipv4' ? 32 : 128}`;
}

/** A parsed exclusion list: addresses and CIDR ranges. */
export type AddressRanges = readonly AddressRange[];

/** `--exclude-address` values: an address or a CIDR range each; anything else is exit 2. */
export function parseRanges(values: readonly string[], flag = '--exclude-address'): AddressRanges {
  return values.map((v) => {
    const r = parseRange(v);
    if (r) return r;
    throw usageError(`invalid ${flag}: "${v}"`, 'an IP address or a CIDR range, e.g. 10.1.2.3, 10.0.0.0/8, ::1, fd00::/8');
  });
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
  if (!text.includes('/')) return canonicalAddress(text);
  const r = parseRange(text);
  return r ? networkOf(r[0].toString(), r[1]) : null;
}

/** A lockout's address as a range: [network, bits] (a single address: /32 or /128). */
export function targetRange(target: string): AddressRange {
  const r = parseRange(target);
  if (!r) throw new Error(`not an address or network: ${target}`);
  return r;
}

/** Whether a lockout's address (address or network) covers a canonical address or network `inner`. */
export function covers(target: string, inner: string): boolean {
  const [net, bits] = targetRange(target);
  const [a, abits] = targetRange(inner);
  return net.kind() === a.kind() && abits >= bits && a.match(net, bits);
}

/**
 * Whether any excluded range (in either form of IPv4, as exclusions match) or one of the exact
 * `addresses` overlaps the network (a reject of it would refuse them too).
 */
export function overlaps(network: string, ranges: AddressRanges, addresses: Iterable<string>): boolean {
  const [net, bits] = targetRange(network);
  const hit = (a: Ip, b: number) => a.kind() === net.kind() && (a.match(net, bits) || net.match(a, b));
  for (const x of addresses) if (hit(...targetRange(x))) return true;
  return ranges.some((r) => hit(...r) || ((t) => t !== null && hit(...t))(mappedTwin(r)));
}
