// A list of roles in a file (verify --roles-file, guard --deny-file): one exact role name per line;
// blank lines and lines starting with # are skipped; duplicates dropped, order kept. Every name
// passes checkRoleName; the first bad line refuses the whole file (a usage error naming the file
// and line), since a list with a name left out or cut short is a list that fails open.
import { readFileSync } from 'node:fs';
import { usageError } from '../errors.js';
import { checkRoleName, roleNameError } from './role-name.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The lines of the file's bytes, each decoded on its own so that bad UTF-8 is found by line. */
function lines(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = data.indexOf(0x0a); i !== -1; i = data.indexOf(0x0a, start)) {
    out.push(data.subarray(start, i));
    start = i + 1;
  }
  out.push(data.subarray(start));
  return out;
}

/** `source` names the file in errors, e.g. "deny file /etc/pgrevoke/deny.txt". */
export function parseRolesFile(data: Buffer | string, source: string): string[] {
  const out: string[] = [];
  for (const [i, raw] of lines(typeof data === 'string' ? Buffer.from(data, 'utf8') : data).entries()) {
    const where = `${source} line ${i + 1}`;
    let text: string;
    try {
      text = utf8.decode(raw);
    } catch {
      throw roleNameError(raw.toString('utf8'), where, 'it is not valid UTF-8');
    }
    const l = text.replace(/\r$/, '').trim();
    if (l === '' || l.startsWith('#')) continue;
    checkRoleName(l, where);
    if (!out.includes(l)) out.push(l);
  }
  return out;
}

/** Read and parse a roles file; an unreadable one is a usage error too. */
export function readRolesFile(file: string, what: string): string[] {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    throw usageError(`cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseRolesFile(data, `${what} ${file}`);
}
