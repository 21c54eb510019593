// Resolving a DSN given on the command line or in a fleet file, with nothing of its password in a
// failure: the resolver never quotes a password (conninfo.ts), so its messages are passed on as
// they are, not searched for the password afterwards. Kept apart from the fleet file parser so
// that --target does not load YAML and zod.
import { PgrevokeError, usageError } from '../errors.js';
import { resolveConnParams, type ConnFlags, type ConnParams } from '../pg/conninfo.js';

/**
 * Resolve conninfo (a DSN, or service=NAME) as the connection will be; a failure is a usage error
 * `<where>: <reason>` with nothing of the password in it.
 */
export function resolveDsn(conninfo: string, where: string, flags: Omit<ConnFlags, 'dsn'> = {}): ConnParams {
  try {
    return resolveConnParams({ ...flags, dsn: conninfo });
  } catch (err) {
    throw usageError(`${where}: ${(err as Error).message}`, err instanceof PgrevokeError ? err.hint : undefined);
  }
}
