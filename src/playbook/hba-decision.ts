// Whether this run can edit the server's pg_hba.conf, decided before anything changes: the file must
// be the server's own (same bytes), writable here, and the operator able to reload and check it.
import { readFile } from 'node:fs/promises';
import { hbaGrants } from '../checks/operator.js';
import type { OperatorFacts, Queryable, RoleInfo, ServerFacts } from '../checks/types.js';
import { ident } from '../pg/quote.js';
import { hasBlock, hbaInexpressible, locallyWritable } from './hba-file.js';
import type { PlanState } from './model.js';
import { SERVER_HBA_CONTENT_SQL } from './sql.js';

export const NO_FILE_ACCESS = 'no file access: managed service or remote server; NOLOGIN is the lever';

export async function hbaDecision(
  q: Queryable,
  server: ServerFacts,
  op: OperatorFacts,
  explicit: string | null,
  targets: RoleInfo[],
): Promise<PlanState['hba']> {
  const perRole = Object.fromEntries(targets.map((t) => [t.name, hbaInexpressible(t.name, server.major)]));
  const file = explicit ?? server.hbaFile;
  const skip = (reason: string) => ({ file, skip: reason, perRole, present: [] as string[] });
  // a missing privilege is said as such, with the GRANTs that fix it; "managed service or remote
  // server" only where the file itself is not reachable from here
  const grants = hbaGrants(op);
  const missing = grants.length
    ? `${op.user} may not ${[!op.reload && 'reload the configuration (pg_reload_conf)', !op.readHba && 'read pg_hba_file_rules (to check the edit)'].filter(Boolean).join(' nor ')}: as a superuser, ${grants.join('; ')}; or run as a superuser (on Debian, reload from the shell with pg_ctlcluster ${server.major} <cluster> reload); NOLOGIN is the lever meanwhile`
    : null;
  if (!file)
    return skip(
      `${op.user} may not see hba_file (needs superuser or pg_read_all_settings): pass --hba-file PATH when this host has the server's pg_hba.conf${missing ? `; also, ${missing}` : '; NOLOGIN is the lever'}`,
    );
  const local = await locallyWritable(file);
  if (local) return skip(explicit ? `--hba-file: ${local}` : `${NO_FILE_ACCESS} (${local})`);
  if (missing) return skip(missing);
  if (!explicit) {
    // the same path on this machine is not proof that it is the server's file: compare the bytes
    let theirs: string | undefined;
    try {
      theirs = (await q.query<{ content: string }>(SERVER_HBA_CONTENT_SQL)).rows[0]?.content;
    } catch (err) {
      if ((err as { code?: string }).code === '42501')
        return skip(
          `${op.user} may not read the server's pg_hba.conf to check that ${file} here is it (pg_read_file): as a superuser, GRANT pg_read_server_files TO ${ident(op.user)} (for a file inside the data directory GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) is enough); or pass --hba-file ${file} if it is this server's`,
        );
      return skip(`${NO_FILE_ACCESS} (the server's pg_hba.conf could not be read to compare: ${(err as Error).message})`);
    }
    let mine: string;
    try {
      mine = await readFile(file, 'utf8');
    } catch (err) {
      return skip(`${file} cannot be read here: ${(err as Error).message}`);
    }
    if (theirs !== mine) return skip(`${NO_FILE_ACCESS} (${file} here differs from the server's file: a different machine)`);
  }
  if (targets.every((t) => perRole[t.name]))
    return skip(`no target role can be written in pg_hba.conf: ${Object.values(perRole).join('; ')}`);
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (err) {
    return skip(`${file} cannot be read: ${(err as Error).message}`);
  }
  const present = targets.filter((t) => !perRole[t.name] && hasBlock(content, t.name)).map((t) => t.name);
  if (targets.every((t) => perRole[t.name] || present.includes(t.name)))
    return { file, skip: `a pgrevoke reject block for each target is already in ${file}`, perRole, present };
  return { file, skip: null, perRole, present };
}
