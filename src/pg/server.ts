// Facts about the server and about the connected operator, read once per connection.
import type { OperatorFacts, Queryable, ServerFacts } from '../checks/types.js';

export const SERVER_SQL = `
SELECT version() AS version,
       current_setting('server_version_num')::int AS num,
       pg_is_in_recovery() AS in_recovery,
       (SELECT setting FROM pg_settings WHERE name = 'hba_file') AS hba_file,
       (SELECT setting FROM pg_settings WHERE name = 'data_directory') AS data_directory,
       CASE WHEN has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')
            THEN (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) END AS system_identifier`;

interface ServerRow {
  version: string;
  num: number;
  in_recovery: boolean;
  hba_file: string | null;
  data_directory: string | null;
  system_identifier: string | null;
}

export async function collectServer(q: Queryable): Promise<ServerFacts> {
  return toServerFacts((await q.query<ServerRow>(SERVER_SQL)).rows[0]!);
}

/** SERVER_SQL's row as facts (cutoff reads it in a batch of its own: src/playbook/sql.ts). */
export function toServerFacts(row: object): ServerFacts {
  const r = row as ServerRow;
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
/** The operator's facts; the target's OID as an SQL expression (default: parameter $1). */
export function operatorSql(target = '$1::oid'): string {
  return `
SELECT current_user AS "user", r.rolsuper AS superuser, r.rolcreaterole AS create_role,
       pg_has_role(current_user, 'pg_signal_backend', 'USAGE') AS signal_backend,
       CASE WHEN ${target} IS NULL THEN false ELSE pg_has_role(current_user, ${target}, 'USAGE') END AS member_of_target,
       has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE')
         AND has_table_privilege('pg_catalog.pg_hba_file_rules', 'SELECT') AS read_hba,
       has_function_privilege('pg_catalog.pg_reload_conf()', 'EXECUTE') AS reload,
       has_function_privilege('pg_catalog.pg_stat_file(text)', 'EXECUTE') AS stat_file
FROM pg_roles r WHERE r.rolname = current_user`;
}

const OPERATOR_SQL = operatorSql();

interface OperatorRow {
  user: string;
  superuser: boolean;
  create_role: boolean;
  signal_backend: boolean;
  member_of_target: boolean;
  read_hba: boolean;
  reload: boolean;
  stat_file: boolean;
}

export async function collectOperator(q: Queryable, targetOid: number | null): Promise<OperatorFacts> {
  return toOperatorFacts((await q.query<OperatorRow>(OPERATOR_SQL, [targetOid])).rows[0]!);
}

/** operatorSql()'s row as facts. */
export function toOperatorFacts(row: object): OperatorFacts {
  const r = row as OperatorRow;
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
