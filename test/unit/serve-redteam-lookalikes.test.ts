// Red team (issue 17): a provider's name that case-insensitive comparison takes for another.
// JavaScript's toLowerCase turns U+212A KELVIN SIGN into an ASCII k and U+0130 (I with a dot)
// into i + a combining dot, and a regular expression with the i and u flags matches U+017F LONG S
// as s and U+212A as k. So a second account named with one of these (a look-alike the identity
// provider keeps apart from the real one) mapped to the real person's roles: its routine
// deactivation cut them off, and its reactivation restored their cutoff. The SCIM look-up by
// userName found the real user for the look-alike too, so a provider linking by that look-up
// would have deactivated the real user by its id.
import { afterAll, describe, expect, it } from 'vitest';
import { foldName, mapIdentity } from '../../src/serve/identity.js';
import { bench, patch, removeStateDirs, user } from './serve-scim-harness.js';

const KELVIN = '\u212a';
const LONG_S = '\u017f';
const DOTTED_I = '\u0130';

const rules = [
  { user: 'kevin@example.com', roles: ['kevin_exact'] },
  { user: 'igor@example.com', roles: ['igor_exact'] },
  { user_pattern: '^(?<name>[a-z0-9_]+)@example\\.com$', roles: ['{name}'] },
  { user_pattern: '^sam\\.admin@corp\\.example$', roles: ['sam_admin'] },
];

afterAll(removeStateDirs);

describe('identities: look-alikes of ASCII letters map to no one', () => {
  it('every character outside ASCII that toLowerCase or a case-insensitive Unicode regex takes for ASCII is one foldName keeps apart', () => {
    const found: string[] = [];
    for (let cp = 0x80; cp < 0x110000; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      if (/[^\x80-\u{10ffff}]/u.test(c.toLowerCase()) || /[a-z]/iu.test(c)) found.push(c);
    }
    expect(found.map((c) => c.codePointAt(0)!.toString(16))).toEqual(['130', '17f', '212a']);
    for (const c of found) expect(foldName(`x${c}y`)).toMatch(/[\x80-\u{10ffff}]/u);
  });

  it('an exact rule: the Kelvin sign and the dotted I are not the ASCII letters', () => {
    expect(mapIdentity(rules, { user: `${KELVIN}evin@example.com` }).roles).not.toEqual(['kevin_exact']);
    expect(mapIdentity(rules, { user: `${DOTTED_I}gor@example.com` }).roles).not.toEqual(['igor_exact']);
    // real case differences still match
    expect(mapIdentity(rules, { user: 'KEVIN@Example.com' }).roles).toEqual(['kevin_exact']);
  });

  it('a pattern: a look-alike that only the case-insensitive match made fit is unmapped, with why', () => {
    for (const name of [`${KELVIN}arl@example.com`, `${LONG_S}am@example.com`, `${LONG_S}am.admin@corp.example`]) {
      const m = mapIdentity(rules, { user: name });
      expect(m, name).toMatchObject({ mapped: false, roles: null });
      expect((m as { reason: string }).reason).toMatch(/look-alike/);
    }
  });

  it('a GitHub login with a look-alike is not the ASCII login', () => {
    expect(mapIdentity([{ github: 'kevin-gh', roles: ['kevin'] }], { github: `${KELVIN}evin-gh` }).mapped).toBe(false);
  });

  it('names outside ASCII that are no look-alike still compare without case', () => {
    const r = [
      { user: 'rené@example.com', roles: ['rene'] },
      { user: 'strauß@example.com', roles: ['strauss'] },
    ];
    expect(mapIdentity(r, { user: 'RENÉ@example.com' }).roles).toEqual(['rene']);
    expect(mapIdentity(r, { user: 'STRAUß@example.com' }).roles).toEqual(['strauss']);
  });
});

describe('SCIM: the look-up and uniqueness by userName keep look-alikes apart', () => {
  it('filter userName eq with a Kelvin sign does not find kevin, and the look-alike can be created beside him', async () => {
    const { send, rec } = await bench();
    const kevin = await send('POST', '/Users', user('kevin@example.com'));
    expect(kevin.status).toBe(201);
    const look = `${KELVIN}evin@example.com`;
    const found = await send('GET', `/Users?filter=${encodeURIComponent(`userName eq "${look}"`)}`);
    expect(found.json.totalResults).toBe(0);
    const other = await send('POST', '/Users', user(look));
    expect(other.status).toBe(201);
    // the look-alike's deactivation is about the look-alike, not kevin
    const off = await send('PATCH', `/Users/${other.json.id as string}`, patch({ op: 'replace', path: 'active', value: false }));
    expect(off.status).toBe(200);
    expect(rec.events.map((e) => e.identity.user)).toEqual([look]);
    expect(mapIdentity(rules, rec.events[0]!.identity).roles).toBeNull();
    // and a real case difference is still the same user
    const upper = await send('GET', `/Users?filter=${encodeURIComponent('userName eq "KEVIN@EXAMPLE.COM"')}`);
    expect(upper.json.totalResults).toBe(1);
    expect((await send('POST', '/Users', user('Kevin@Example.com'))).status).toBe(409);
  });
});
