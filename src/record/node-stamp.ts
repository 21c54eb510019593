// Over several nodes every entry of a report names its node: sessions, locks, findings, suspects...
// A section per node already says it once; a row copied out of the JSON (into a ticket, a SIEM)
// must still say where it came from.

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** A copy of `value` in which every object that sits in an array carries `node` (kept if it has one). */
export function stampNode<T>(value: T, node: string): T {
  const walk = (v: unknown, inArray: boolean): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, true));
    if (!isPlainObject(v)) return v;
    const out: Record<string, unknown> = inArray && !('node' in v) ? { node } : {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x, false);
    return out;
  };
  return walk(value, false) as T;
}
