// Client addresses and address ranges given on the command line (sessions/kill --client, guard
// --exclude-address) and read from the server (inet_client_addr(), pg_stat_activity.client_addr, a
// log's client host): one parser, one canonical text (ipaddr.js), one match. A range of the operator's
// matches a client in either form of IPv4: 10.0.0.1 and the IPv4-mapped ::ffff:10.0.0.1 are one host
// (a dual-stack listener shows IPv4 clients so), so `--client 10.0.0.0/8` finds both and an exclusion
// spares both. pg_hba.conf tells the two apart (an IPv4 line never matches a mapped client): what is
// written there keeps the form the client used (src/lockout/address.ts).
import ipaddr from 'ipaddr.js';

export type Ip = ipaddr.IPv4 | ipaddr.IPv6;
/** A network: its address and prefix length (a single address: /32 or /128). */
export type AddressRange = readonly [Ip, number];

/**
 * The canonical text of an IP address, or null when it is none (a host name, a short IPv4 form
 * such as `10.1`, an IPv6 zone index, which neither inet nor pg_hba.conf takes). An IPv4-mapped
 * IPv6 address stays IPv6.
 */
export function canonicalAddress(text: string | null): string | null {
  if (text === null) return null;
  const t = text.trim();
  if (ipaddr.IPv4.isValidFourPartDecimal(t)) return ipaddr.IPv4.parse(t).toString();
  if (!t.includes('%') && ipaddr.IPv6.isValid(t)) return ipaddr.IPv6.parse(t).toString();
  return null;
}

/** An address or a CIDR range (`10.1.2.3`, `10.0.0.0/8`, `::1`, `fd00::/8`), or null when it is neither. */
export function parseRange(text: string): AddressRange | null {
  const t = text.trim();
  const slash = t.lastIndexOf('/');
  const one = canonicalAddress(slash < 0 ? t : t.slice(0, slash));
  if (one === null) return null;
  const a = ipaddr.parse(one);
  const max = a.kind() === 'ipv4' ? 32 : 128;
  if (slash < 0) return [a, max];
  const bits = t.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return null;
  return [a, Number(bits)];
}

/** `address/bits`, the address as given (not its network): what the inet `<<=` test takes. */
export function rangeText([a, bits]: AddressRange): string {
  return `${a.toString()}/${bits}`;
}

/** The same network in the other form of IPv4 (10.0.0.0/8 <-> ::ffff:10.0.0.0/104), or null for other IPv6 networks. */
export function mappedTwin([a, bits]: AddressRange): AddressRange | null {
  if (a.kind() === 'ipv4') return [ipaddr.IPv6.parse(`::ffff:${a.toString()}`), bits + 96];
  const v6 = a as ipaddr.IPv6;
  return v6.isIPv4MappedAddress() && bits >= 96 ? [v6.toIPv4Address(), bits - 96] : null;
}

/** A client address (any text) parsed, or null when it is none. */
function clientIp(address: string): Ip | null {
  const one = canonicalAddress(address);
  return one === null ? null : ipaddr.parse(one);
}

/** Each range's mappedTwin, computed once per range (inRanges runs on every failure the lockout engine ingests). */
const twins = new WeakMap<AddressRange, AddressRange | null>();
function twinOf(range: AddressRange): AddressRange | null {
  let twin = twins.get(range);
  if (twin === undefined) twins.set(range, (twin = mappedTwin(range)));
  return twin;
}

function matches(a: Ip, range: AddressRange): boolean {
  const hit = ([net, bits]: AddressRange) => net.kind() === a.kind() && a.match(net, bits);
  const twin = twinOf(range);
  return hit(range) || (twin !== null && hit(twin));
}

/** Whether the client address (any text; not an address: no) is in the range, in either form of IPv4. */
export function inRange(address: string, range: AddressRange): boolean {
  const a = clientIp(address);
  return a !== null && matches(a, range);
}

/** Whether the client address is in any of the ranges (the address parsed once). */
export function inRanges(address: string, ranges: readonly AddressRange[]): boolean {
  if (ranges.length === 0) return false;
  const a = clientIp(address);
  return a !== null && ranges.some((r) => matches(a, r));
}
