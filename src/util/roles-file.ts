// A list of roles in a file (verify --roles-file, guard --deny-file): one exact role name per line;
// blank lines and lines starting with # are skipped; duplicates dropped, order kept.
export function parseRolesFile(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const l = raw.replace(/\r$/, '').trim();
    if (l === '' || l.startsWith('#')) continue;
    if (!out.includes(l)) out.push(l);
  }
  return out;
}
