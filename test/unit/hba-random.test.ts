// The differential test's file generator: deterministic, and it covers what the test claims to cover.
import { describe, expect, it } from 'vitest';
import { generateHba, HARNESS_LINE, LIST_FILES, prng, seedFor, WORLD } from '../helpers/hba-random.js';

describe('hba-random', () => {
  it('prng is fixed: the same seed gives the same sequence on every run', () => {
    const r = prng(42);
    expect([r(), r(), r()].map((x) => x.toFixed(10))).toEqual(['0.6011037519', '0.4482905590', '0.8524657935']);
  });

  it('the same seed gives the same file, byte for byte; another seed another file', () => {
    expect(generateHba(seedFor(3))).toEqual(generateHba(seedFor(3)));
    expect(generateHba(seedFor(3)).text).not.toBe(generateHba(seedFor(4)).text);
  });

  it('every file starts with the harness line, numbers its lines, and refers only to @files it brings', () => {
    for (let i = 0; i < 300; i++) {
      const g = generateHba(seedFor(i));
      expect(g.text.split('\n')[0]).toBe(HARNESS_LINE);
      expect(g.lines.map((l) => l.number)).toEqual(g.lines.map((_, k) => k + 1));
      expect(g.text).toBe(g.lines.map((l) => `${l.text}\n`).join(''));
      expect(WORLD.targets).toContain(g.role);
      for (const l of g.lines) {
        const fields = l.text.split(' ');
        expect(fields[0]).toBe(l.type);
        expect(fields[fields.length - 1]).toBe(l.method);
        // local: type db user method; host*: type db user address [mask] method
        if (l.type === 'local') expect(fields).toHaveLength(4);
        else expect([5, 6]).toContain(fields.length);
        for (const ref of l.text.match(/@[\w.-]+/g) ?? []) expect(Object.keys(g.files)).toContain(ref.slice(1));
        expect(l.text).not.toMatch(/(^|[\s,])"?\//); // no regex tokens (PG16+ would read them as such)
      }
    }
  });

  it('over the first 200 seeds: every line type, method, keyword quoted and bare, groups, @files, masks, IPv6', () => {
    const features = new Set<string>();
    const types = new Set<string>();
    const methods = new Set<string>();
    const roles = new Set<string>();
    const files = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const g = generateHba(seedFor(i));
      roles.add(g.role);
      for (const f of Object.keys(g.files)) files.add(f);
      for (const l of g.lines.slice(1)) {
        types.add(l.type);
        methods.add(l.method);
        for (const f of l.features) features.add(f);
      }
    }
    expect([...types].sort()).toEqual(['host', 'hostnossl', 'hostssl', 'local']);
    expect([...methods].sort()).toEqual(['reject', 'scram-sha-256', 'trust']);
    expect([...roles].sort()).toEqual([...WORLD.targets].sort());
    expect([...files].sort()).toEqual([LIST_FILES.databases, LIST_FILES.users].sort());
    for (const f of [
      'all (database)',
      'quoted "all" (database)',
      'sameuser (database)',
      'quoted "sameuser" (database)',
      'samerole (database)',
      'quoted "samerole" (database)',
      'replication (database)',
      'quoted "replication" (database)',
      'all (user)',
      'quoted "all" (user)',
      '+group (user)',
      'quoted "+staff" (user)',
      '@file',
      'address+mask',
      'IPv6',
      'address all',
      'hostssl',
      'hostnossl',
      'containment block',
    ])
      expect(features, f).toContain(f);
    expect([...features].some((f) => f.startsWith('@file: quoted'))).toBe(true);
  });
});
