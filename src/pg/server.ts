// Facts about the server and about the connected operator, read once per connection.
import type { OperatorFacts, Queryable, ServerFacts } from '../checks/types.js';

const SERVER_SQL = `
SELECT version() AS version,
       current_setting('server_version_num')::int AS num,
       pg_is_in_recovery() AS in_recovery,
       (SELECT setting FROM pg_settings WHERE name = 'hba_file') AS hba_file,
       (SELECT setting FROM pg_settings WHERE name = 'data_directory') AS data_directory,
       CASE WHEN has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')
            THEN (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) END AS system_identifier`;

export async function collectServer(q: Queryable): Promise<ServerFacts> {
  const { rows } = await q.query<{
    version: string;
    num: number;
    in_recovery: boolean;
    hba_file: string | null;
    data_directory: string | null;
    system_identifier: string | null;
  }>(SERVER_SQL);
  const r = rows[0]!;
  return {
    version: r.version,
    versionNum: r.num,
    major: Math.floor(r.num / 10000),
    inRecovery: r.in_recovery,
    hbaFile: r.hba_file,
    dataDirectory: r.data_directory,
    systemIdentifier: r.system_identifier,
  };
}

// has_*_privilege answers true for superusers, so one row says what the operator may do.
const OPERATOR_SQL = `
SELECT current_user AS "user", r.rolsuper AS superuser, r.rolcreaterole AS create_role,
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS signal_backend,
       CASE WHEN $1::oid IS NULL THEN false ELSE pg_has_role(current_user, $1::oid, 'USAGE') END AS member_of_target,
       has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE')
         AND has_table_privilege('pg_catalog.pg_hba_file_rules', 'SELECT') AS read_hba,
       has_function_privilege('pg_catalog.pg_reload_conf()', 'EXECUTE') AS reload,
       has_function_privilege('pg_catalog.pg_stat_file(text)', 'EXECUTE') AS stat_file
FROM pg_roles r WHERE r.rolname = current_user`;

export async function collectOperator(q: Queryable, targetOid: number | null): Promise<OperatorFacts> {
  const { rows } = await q.query<{
    user: string;
    superuser: boolean;
    create_role: boolean;
    signal_backend: boolean;
    member_of_target: boolean;
    read_hba: boolean;
    reload: boolean;
    stat_file: boolean;
  }>(OPERATOR_SQL, [targetOid]);
  const r = rows[0]!;
  return {
    user: r.user,
    superuser: r.superuser,
    createRole: r.create_role,
    signalBackend: r.signal_backend,
    memberOfTarget: r.member_of_target,
    readHba: r.read_hba,
    reload: r.reload,
    statFile: r.stat_file,
  };
}
