// Cutting reads into entries: lines and CSV records (a quoted field may hold newlines), partial
// last entries left for the next read, over-long entries skipped across reads without buffering.
import { describe, expect, it } from 'vitest';
import { lastBoundary } from '../../src/serverlog/boundary.js';
import { UnitScanner } from '../../src/serverlog/units.js';

const texts = (s: UnitScanner, buf: string, base = 0) => {
  const r = s.scan(Buffer.from(buf), base);
  return { units: r.units.map((u) => [u.offset, u.bytes.toString()]), end: r.end, oversized: r.oversized, skipping: r.skipping };
};

describe('UnitScanner', () => {
  it('lines: complete ones only; the partial last line is left, the end stays before it', () => {
    expect(texts(new UnitScanner(false, 100), 'one\ntwo\nthr')).toEqual({
      units: [
        [0, 'one'],
        [4, 'two'],
      ],
      end: 8,
      oversized: 0,
      skipping: null,
    });
  });

  it('CSV: a newline inside quotes does not end the record; doubled quotes do not confuse the count', () => {
    const csv = 'a,"x\ny ""q"" z",b\nc,"open\n';
    const r = texts(new UnitScanner(true, 100), csv);
    expect(r.units).toEqual([[0, 'a,"x\ny ""q"" z",b']]);
    expect(r.end).toBe(18); // the second record's quote is still open: not taken
  });

  it('offsets are bytes: a read that ends inside a UTF-8 character is no problem', () => {
    const data = Buffer.from('ü1\nü2\n');
    const s = new UnitScanner(false, 100);
    const first = s.scan(data.subarray(0, 5), 0); // cuts the second ü in half
    expect(first.units.map((u) => u.bytes.toString())).toEqual(['ü1']);
    expect(first.end).toBe(4);
    const second = s.scan(data.subarray(first.end), first.end);
    expect(second.units.map((u) => [u.offset, u.bytes.toString()])).toEqual([[4, 'ü2']]);
  });

  it('an over-long entry is skipped, across reads, without moving a cursor into it', () => {
    const s = new UnitScanner(false, 8);
    const a = s.scan(Buffer.from('ok\n0123456789abcdef'), 0);
    expect(a.units.map((u) => u.bytes.toString())).toEqual(['ok']);
    expect(a).toMatchObject({ end: 3, skipping: 19 });
    expect(s.resumeAt(3)).toBe(19);
    const b = s.scan(Buffer.from('ghij'), 19);
    expect(b).toMatchObject({ end: 3, skipping: 23, units: [] });
    const c = s.scan(Buffer.from('kl\nnext\n'), 23);
    expect(c.units.map((u) => [u.offset, u.bytes.toString()])).toEqual([[26, 'next']]);
    expect(c).toMatchObject({ end: 31, oversized: 1, skipping: null });
    expect(s.resumeAt(31)).toBe(31);
  });

  it('CSV: an over-long record with quoted newlines is skipped to its real end', () => {
    const s = new UnitScanner(true, 10);
    const r = s.scan(Buffer.from('"a\nb\nc\nd\ne\nf\ng",x\nshort\n'), 0);
    expect(r.units.map((u) => u.bytes.toString())).toEqual(['short']);
    expect(r.oversized).toBe(1);
  });
});

describe('lastBoundary (where a reader with no cursor starts)', () => {
  const rec = (n: number) =>
    `2026-12-01 14:53:22.4${n}0 UTC,"u",,1,,,,,,,0,LOG,00000,"line ${n}\n2026-12-01 14:53:22.000 UTC,not a record",,,,,,,,,"","client backend",,0\n`;

  it('lines: after the last newline', () => {
    expect(lastBoundary('jsonlog', Buffer.from('{"a":1}\n{"b"'), 100)).toBe(108);
  });

  it('csvlog: not at a line inside a quoted field that looks like a record start', () => {
    const tail = Buffer.from(`garbage"\n${rec(1)}${rec(2)}2026-12-01 14:53:22.999 UTC,"partial`);
    const end = lastBoundary('csvlog', tail, 1000);
    expect(end).toBe(1000 + Buffer.byteLength(`garbage"\n${rec(1)}${rec(2)}`));
  });
});
