// The lockout engine's SQL, the only place it is built: NOLOGIN and its undo and the session
// terminate are cutoff's own builders (src/playbook/sql.ts: one quoting helper, src/pg/quote.ts);
// values go as parameters.
import { LOCK_WAIT, nologin, restoreRole, terminate } from '../playbook/sql.js';
import type { RoleBefore } from './types.js';

export { HBA_ERRORS_SQL, RELOAD_CONF, SERVER_HBA_CONTENT_SQL } from '../playbook/sql.js';

/** Who the engine is on a node (never locked out), what the node is, where its pg_hba.conf is (visible to superusers and pg_read_all_settings). */
export const NODE_FACTS_SQL = `SELECT current_user::text AS "user", host(inet_client_addr()) AS address, pg_is_in_recovery() AS standby,
       current_setting('server_version_num')::int AS num,
       (SELECT setting FROM pg_settings WHERE name = 'hba_file') AS hba_file`;

/** The server's reading of the lines the block put at these line numbers ($1 int[]): the reload check. */
export const RULES_AT_SQL = `SELECT line_number, type, database, user_name, address, netmask, auth_method, error
FROM pg_hba_file_rules WHERE line_number = ANY($1::int[]) ORDER BY line_number`;

/** The roles of `role` lockouts, by exact name ($1 text[]). */
export const ROLES_SQL = `SELECT oid::int8 AS oid, rolname::text AS name, rolcanlogin AS can_login, rolconnlimit AS conn_limit
FROM pg_roles WHERE rolname = ANY($1::text[])`;

/**
 * NOLOGIN for a `role` lockout: cutoff's ALTER (NOLOGIN CONNECTION LIMIT 0), its superuser and
 * CREATEROLE left alone (a lockout is not a containment), with cutoff's bounded lock wait.
 */
export function lockRole(name: string): string {
  return [LOCK_WAIT, ...nologin([{ name, superuser: false, createRole: false }], { strip: false })].join(';\n');
}

/** LOGIN and the connection limit back as they were: only ever run when the lockout set NOLOGIN itself. */
export function unlockRole(name: string, before: RoleBefore): string {
  return [
    LOCK_WAIT,
    restoreRole({ name, canLogin: true, connectionLimit: before.connectionLimit, superuser: false, createRole: false }),
  ].join(';\n');
}

/** End every session of the role, by OID (cutoff's statement: also walsenders); one row per backend, `terminated`. */
export function endSessions(oid: number): string {
  return terminate([oid]);
}
