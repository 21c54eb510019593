// The server's log time (`2026-12-01 14:30:01.145 UTC`, as %m, csvlog and jsonlog write it) as
// ISO 8601 with an offset. PostgreSQL writes log_timezone's abbreviation (UTC, CET, EDT) or, for a
// zone that has none, a numeric one (+03, -0330). An abbreviation alone does not name an offset
// (CST is three zones), so a named zone (log_timezone from the server, or the host's own zone for a
// file on the database host) decides, and the abbreviation only picks between the two offsets of
// a DST change's repeated hour.

const STAMP = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))? ?([A-Za-z][A-Za-z0-9_/+-]*|[+-]\d{1,2}(?::?\d\d)?)?$/;
const UTC_NAMES = new Set(['UTC', 'GMT', 'UCT', 'Z', 'UT', 'Zulu', 'Etc/UTC', 'Etc/GMT', 'Universal']);

function pad(n: number, width = 2): string {
  return String(Math.abs(n)).padStart(width, '0');
}

function offsetText(minutes: number): string {
  return `${minutes < 0 ? '-' : '+'}${pad(Math.trunc(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
}

/** The zone's offset (minutes east of UTC) at a UTC instant, from Intl. */
function zoneOffsetAt(zone: string, utcMs: number): number | null {
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    }).formatToParts(new Date(utcMs));
    const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
    const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
    return Math.round((local - Math.floor(utcMs / 1000) * 1000) / 60_000);
  } catch {
    return null;
  }
}

/** The zone's short names at an instant (`CET`, `GMT+1`), in the two locales that spell most of them. */
function zoneNamesAt(zone: string, utcMs: number): string[] {
  return ['en-US', 'en-GB'].map(
    (locale) =>
      new Intl.DateTimeFormat(locale, { timeZone: zone, timeZoneName: 'short' })
        .formatToParts(new Date(utcMs))
        .find((p) => p.type === 'timeZoneName')?.value ?? '',
  );
}

/** Offsets (minutes) a wall-clock time can have in `zone`: one, two in a repeated hour, none in a skipped one (then the one before). */
function offsetsFor(zone: string, wallMs: number): number[] {
  const found = new Set<number>();
  for (const probe of [-14 * 60, -12 * 60, -6 * 60, 0, 6 * 60, 12 * 60, 14 * 60]) {
    const guess = zoneOffsetAt(zone, wallMs - probe * 60_000);
    if (guess === null) return [];
    if (zoneOffsetAt(zone, wallMs - guess * 60_000) === guess) found.add(guess);
  }
  if (found.size === 0) {
    const before = zoneOffsetAt(zone, wallMs - 86_400_000);
    if (before !== null) found.add(before);
  }
  return [...found];
}

function numericOffset(tz: string): number | null {
  const m = /^([+-])(\d{1,2})(?::?(\d\d))?$/.exec(tz);
  if (!m) return null;
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? 0);
  return m[1] === '-' ? -minutes : minutes;
}

/**
 * ISO 8601 with offset, or null when the text is no timestamp or its zone cannot be told (an
 * abbreviation that is not UTC, with no named zone to decide).
 */
export function logTimeToIso(text: string, zone: string | null): string | null {
  const m = STAMP.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const ms = frac ? Number(frac.padEnd(3, '0').slice(0, 3)) : 0;
  const wallMs = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  if (Number.isNaN(wallMs)) return null;
  let offset = tz === undefined ? null : UTC_NAMES.has(tz) ? 0 : numericOffset(tz);
  if (offset === null && tz !== undefined && zone) {
    const candidates = offsetsFor(zone, wallMs);
    offset =
      candidates.find((off) => zoneNamesAt(zone, wallMs - off * 60_000).includes(tz)) ?? (candidates.length === 1 ? candidates[0]! : null);
  }
  if (offset === null) return null;
  return `${new Date(wallMs).toISOString().slice(0, 23)}${offsetText(offset)}`;
}
