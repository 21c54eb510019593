// The one number parser behind every numeric flag, variable and DSN number: decimal only, in a
// documented range, exit 2 naming where the number came from.
import { describe, expect, it } from 'vitest';
import { countFlag, durationFlag, MAX_TIMER_MS, numberFlag, parseDuration, parseNumber } from '../../src/util/flags.js';
import { usage } from '../helpers/errors.js';

const MS = { integer: true, min: 0, max: 3_600_000, unit: 'ms' } as const;

describe('parseNumber / numberFlag', () => {
  it('takes decimal integers and, where allowed, decimal fractions, surrounding spaces trimmed', () => {
    expect(parseNumber('0', '--x', MS)).toBe(0);
    expect(parseNumber('007', '--x', MS)).toBe(7);
    expect(parseNumber(' 250 ', '--x', MS)).toBe(250);
    expect(parseNumber('3600000', '--x', MS)).toBe(3_600_000);
    expect(parseNumber('0.5', '--x', { min: 0.1, max: 10 })).toBe(0.5);
    expect(numberFlag(undefined, '--x', MS)).toBeUndefined();
  });

  it.each([
    '',
    ' ',
    '0x10',
    '1e3',
    '1E3',
    '-1',
    '+1',
    '1.5',
    '.5',
    '5.',
    '1_000',
    '10ms',
    'Infinity',
    'NaN',
    '1 000',
    '3600001',
    '9'.repeat(400),
  ])('refuses %j as an integer in range, one line naming the flag and the range', (text) => {
    const e = usage(() => numberFlag(text, '--hidden-grace', MS));
    expect(e.message).toBe(`invalid --hidden-grace: "${text}": an integer from 0 to 3600000 (ms)`);
    expect(e.hint).toBeUndefined();
  });

  it('refuses a fraction out of range or in another syntax', () => {
    const r = { min: 0.1, max: 3600 };
    for (const bad of ['0.05', '3600.5', '1e1', '0x1', '', '-0.5'])
      expect(usage(() => parseNumber(bad, '--settle-timeout', r)).message, bad).toBe(
        `invalid --settle-timeout: "${bad}": a number from 0.1 to 3600`,
      );
  });

  it('countFlag: 1 to 256, the fallback when not given', () => {
    expect(countFlag(undefined, '--concurrency', 16)).toBe(16);
    expect(countFlag('256', '--concurrency', 16)).toBe(256);
    for (const bad of ['0', '257', '1.5', '0x10', ''])
      expect(() => countFlag(bad, '--concurrency', 16), bad).toThrow(/invalid --concurrency/);
  });

  it("MAX_TIMER_MS is Node's setTimeout limit", () => {
    expect(MAX_TIMER_MS).toBe(2147483647);
  });
});

describe('durationFlag', () => {
  it('takes the duration syntax within the range', () => {
    expect(durationFlag('1h30m', '--max-blind', { min: 0, max: 86400 })).toBe(5400);
    expect(durationFlag('0', '--max-blind', { min: 0, max: 86400 })).toBe(0);
    expect(parseDuration('250ms')).toBe(0.25);
  });

  it('refuses out of range, exponents, hex and empty text, naming the flag', () => {
    for (const bad of ['2d', '86401', '1e3', '0x10', '', '9'.repeat(400)])
      expect(usage(() => durationFlag(bad, '--max-blind', { min: 0, max: 86400 })).message, bad).toMatch(/^invalid --max-blind: /);
  });
});
