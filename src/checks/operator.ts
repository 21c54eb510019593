// operator.*: what the connected user could not do in a cutoff, said before it matters.
import { ident } from '../pg/quote.js';
import { describePrepared, ONLY_OWNER_OR_SUPERUSER, rollbackAdvice } from './prepared-xacts.js';
import type { Check, Finding, OperatorFacts } from './types.js';

/**
 * The GRANTs (run by a superuser) that let this operator reload the configuration and read
 * pg_hba_file_rules: the view and the function under it are both revoked from PUBLIC, and reading
 * the view checks EXECUTE on the function as the caller (the same on 14 and 18).
 */
export function hbaGrants(o: Pick<OperatorFacts, 'user' | 'reload' | 'readHba'>): string[] {
  const who = ident(o.user);
  return [
    ...(o.reload ? [] : [`GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO ${who}`]),
    ...(o.readHba
      ? []
      : [`GRANT SELECT ON pg_catalog.pg_hba_file_rules TO ${who}`, `GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO ${who}`]),
  ];
}

export const operatorCheck: Check = {
  ids: [
    'operator.cannot_alter_role',
    'operator.cannot_signal',
    'operator.cannot_terminate_superuser',
    'operator.no_hba_access',
    'operator.cannot_reload',
    'operator.on_standby',
    'operator.cannot_finish_prepared',
  ],
  evaluate(f) {
    const o = f.operator;
    const out: Finding[] = [];
    const add = (id: string, severity: Finding['severity'], title: string, detail: string, remediation: string) =>
      out.push({ id, severity, title, detail, remediation, exposure: false });
    if (!o.superuser && (f.role.superuser || !o.createRole))
      add(
        'operator.cannot_alter_role',
        'high',
        `${o.user} cannot set the role NOLOGIN`,
        f.role.superuser
          ? 'altering a superuser role needs superuser'
          : 'ALTER ROLE needs superuser or CREATEROLE (with ADMIN on the role in PG16+)',
        'run cutoff as a superuser, or as a role with CREATEROLE',
      );
    if (!o.superuser && !o.signalBackend && !o.memberOfTarget)
      add(
        'operator.cannot_signal',
        'high',
        `${o.user} cannot terminate the role's sessions`,
        'pg_terminate_backend needs superuser, membership in the target role, or pg_signal_backend',
        'GRANT pg_signal_backend TO the operator, or connect as a superuser',
      );
    if (!o.superuser && (f.role.superuser || f.hiddenBackends.length > 0))
      add(
        'operator.cannot_terminate_superuser',
        'high',
        `${o.user} cannot terminate superuser-owned or not-yet-authenticated backends`,
        f.role.superuser
          ? 'the target is a superuser: only a superuser may signal its backends'
          : 'hidden backends have no role yet: only a superuser may signal them',
        'connect as a superuser for the cutoff',
      );
    if (!o.readHba)
      add(
        'operator.no_hba_access',
        'medium',
        `${o.user} cannot read pg_hba_file_rules`,
        'HBA cannot be evaluated, nor an edit checked, through this connection: the view and its function need superuser or a GRANT',
        `as a superuser: ${hbaGrants({ ...o, reload: true }).join('; ')}`,
      );
    if (!o.reload)
      add(
        'operator.cannot_reload',
        'medium',
        `${o.user} cannot reload the configuration`,
        'pg_reload_conf() needs superuser or a GRANT: an edit of pg_hba.conf would not take effect',
        `as a superuser: ${hbaGrants({ ...o, readHba: true }).join('; ')} (on Debian, pg_ctlcluster ${f.server.major} <cluster> reload from the shell)`,
      );
    if (f.server.inRecovery)
      add(
        'operator.on_standby',
        'medium',
        'connected to a standby',
        'ALTER ROLE cannot run on a hot standby; sessions here are invisible from the primary',
        'run the NOLOGIN on the primary and terminate sessions on every node',
      );
    if (!o.superuser && f.preparedTransactions.length)
      add(
        'operator.cannot_finish_prepared',
        'high',
        `${o.user} cannot roll back the role's ${f.preparedTransactions.length} prepared transaction(s)`,
        `${ONLY_OWNER_OR_SUPERUSER} (42501 otherwise): ${f.preparedTransactions.map(describePrepared).join('; ')}; a cutoff by ${o.user} leaves them and their locks in place`,
        `a superuser runs ${f.preparedTransactions.map(rollbackAdvice).join('; ')}`,
      );
    return out;
  },
};
