// Resolving a DSN given on the command line or in a fleet file, with nothing of its password in a
// failure. Kept apart from the fleet file parser so that --target does not load YAML and zod.
import { PgrevokeError, usageError } from '../errors.js';
import { resolveConnParams, type ConnFlags, type ConnParams } from '../pg/conninfo.js';
import { redact } from '../pg/redact.js';

/**
 * A resolver message with nothing of the DSN's password in it. A DSN that does not parse may quote
 * the text near the failure, which for `password=two words` is part of the password: besides the
 * usual redaction, every word after `password=` is masked.
 */
export function scrubDsnMessage(message: string, dsn: string): string {
  const secrets: string[] = [];
  const add = (s: string | undefined) => {
    if (!s) return;
    secrets.push(s);
    try {
      secrets.push(decodeURIComponent(s));
    } catch {
      /* not percent-encoded */
    }
  };
  add(/^postgres(?:ql)?:\/\/[^:/?#@\s]*:([^@/?#\s]*)@/i.exec(dsn)?.[1]);
  add(/[?&]password=([^&#]*)/i.exec(dsn)?.[1]);
  const tail = /\bpassword\s*=\s*([\s\S]*)$/i.exec(dsn)?.[1];
  if (tail) {
    add(tail.trim());
    for (const word of tail.split(/\s+/)) if (word.replace(/^'|'$/g, '').length >= 3) add(word.replace(/^'|'$/g, ''));
  }
  let out = redact(message);
  for (const s of [...new Set(secrets)].filter((x) => x.length > 0).sort((a, b) => b.length - a.length)) out = out.split(s).join('*****');
  return out;
}

/**
 * Resolve conninfo (a DSN, or service=NAME) as the connection will be; a failure is a usage error
 * `<where>: <reason>` with nothing of the password in it.
 */
export function resolveDsn(conninfo: string, where: string, flags: Omit<ConnFlags, 'dsn'> = {}): ConnParams {
  try {
    return resolveConnParams({ ...flags, dsn: conninfo });
  } catch (err) {
    const hint = err instanceof PgrevokeError && err.hint ? scrubDsnMessage(err.hint, conninfo) : undefined;
    throw usageError(`${where}: ${scrubDsnMessage((err as Error).message, conninfo)}`, hint);
  }
}
