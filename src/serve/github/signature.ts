// GitHub's webhook signature: X-Hub-Signature-256 is `sha256=` and the hex HMAC-SHA256 of the raw
// body under the webhook's secret (GitHub's "Validating webhook deliveries"). Checked over the
// bytes as received, before anything parses them, and compared in constant time.
import { createHmac, timingSafeEqual } from 'node:crypto';

const HEADER_FORM = /^sha256=([0-9a-fA-F]{64})$/;

/**
 * True when `header` has the form GitHub sends (`sha256=` and 64 hex digits), as received: nothing
 * is trimmed (Node's parser has already taken off the spaces and tabs around a header's value, and
 * GitHub sends none), so the HTTP front's check before the body is read and signatureValid's agree.
 */
export function signatureWellFormed(header: string | string[] | undefined): header is string {
  return typeof header === 'string' && HEADER_FORM.test(header);
}

/** The X-Hub-Signature-256 value GitHub sends for `body` under `secret`. */
export function signBody(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * True when `header` is the signature of `body` under `secret`. A missing, repeated or malformed
 * header is false; only its form is checked before the comparison, which is of the 32 digest
 * bytes in constant time (timingSafeEqual), so the time taken says nothing about the secret.
 */
export function signatureValid(secret: string, body: Buffer, header: string | string[] | undefined): boolean {
  if (!signatureWellFormed(header)) return false;
  const m = HEADER_FORM.exec(header);
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(Buffer.from(m[1]!, 'hex'), expected);
}
