// operator.*: what the connected user could not do in a cutoff, said before it matters.
import type { Check, Finding } from './types.js';

export const operatorCheck: Check = {
  ids: [
    'operator.cannot_alter_role',
    'operator.cannot_signal',
    'operator.cannot_terminate_superuser',
    'operator.no_hba_access',
    'operator.cannot_reload',
    'operator.on_standby',
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
        'HBA cannot be evaluated or edited through this connection (needs superuser; managed services give no file access)',
        'use NOLOGIN as the lever, or run with superuser and --hba-file',
      );
    if (!o.reload)
      add(
        'operator.cannot_reload',
        'medium',
        `${o.user} cannot reload the configuration`,
        'pg_reload_conf() needs superuser by default',
        'reload as a superuser after editing pg_hba.conf',
      );
    if (f.server.inRecovery)
      add(
        'operator.on_standby',
        'medium',
        'connected to a standby',
        'ALTER ROLE cannot run on a hot standby; sessions here are invisible from the primary',
        'run the NOLOGIN on the primary and terminate sessions on every node',
      );
    return out;
  },
};
