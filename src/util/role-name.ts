// The one check every role name pgrevoke is given passes (argv, --deny, --roles-file, deny files,
// fleet files), before any lookup. PostgreSQL cuts identifiers to NAMEDATALEN-1 = 63 bytes
// (silently when a text value is cast to name), so a longer name would act on another role; a NUL
// byte cannot travel in the protocol, so a name holding one would make every statement fail.
import { usageError, type PgrevokeError } from '../errors.js';

export const MAX_ROLE_NAME_BYTES = 63;

/** What is wrong with a role name, or null when PostgreSQL would take it as written. */
export function roleNameProblem(name: string): string | null {
  if (name === '') return 'an empty role name';
  if (name.includes('\0')) return 'it contains a NUL byte';
  // Node decodes invalid UTF-8 on argv to U+FFFD: the name given is not the one typed
  if (name.includes('\uFFFD')) return 'it is not valid UTF-8 (U+FFFD, the replacement character, in it)';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_ROLE_NAME_BYTES)
    return `it is ${bytes} bytes long; PostgreSQL names are at most ${MAX_ROLE_NAME_BYTES} bytes and a longer one is cut to that, which can be another role`;
  return null;
}

/** A usage error (exit 2) for a bad role name: `where` says which flag, argument or file line. */
export function roleNameError(name: string, where: string, problem: string): PgrevokeError {
  return usageError(`${where}: role name ${JSON.stringify(name)} refused: ${problem}`);
}

/** The name itself, or a usage error saying where it came from and why it is refused. */
export function checkRoleName(name: string, where: string): string {
  const problem = roleNameProblem(name);
  if (problem !== null) throw roleNameError(name, where, problem);
  return name;
}
