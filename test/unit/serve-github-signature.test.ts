// signatureWellFormed, the one form check that both the HTTP front (before the body is read) and
// signatureValid use: `sha256=` and 64 hex digits exactly, nothing trimmed.
import { describe, expect, it } from 'vitest';
import { signatureValid, signatureWellFormed, signBody } from '../../src/serve/github/signature.js';

describe('signatureWellFormed', () => {
  const sig = signBody('s', 'body');
  it('takes what GitHub sends, in either case of hex', () => {
    expect(signatureWellFormed(sig)).toBe(true);
    expect(signatureWellFormed(sig.toUpperCase().replace('SHA256=', 'sha256='))).toBe(true);
  });
  it('refuses what signatureValid refuses on its form: whitespace, a short digest, a list, nothing', () => {
    for (const h of [`${sig} `, ` ${sig}`, `${sig}\u00a0`, sig.slice(0, -1), `sha1=${sig.slice(7)}`, [sig], undefined]) {
      expect(signatureWellFormed(h)).toBe(false);
      expect(signatureValid('s', Buffer.from('body'), h)).toBe(false);
    }
    expect(signatureValid('s', Buffer.from('body'), sig)).toBe(true);
  });
});
