// What this operator cannot do, found before anything changes: a refusal (exit 2) rather than a
// cutoff that fails halfway.
import { ExitCode, PgrevokeError } from '../errors.js';
import type { Plan, PlanState } from './model.js';

/** What this operator cannot do, as a refusal before anything changes (exit 2), or null. */
export function preflight(plan: Plan, state: PlanState, opts: { primaryInRun?: boolean } = {}): PgrevokeError | null {
  const op = plan.operator;
  const who = op.user;
  const standby = state.server.inRecovery;
  if (standby && !opts.primaryInRun)
    return new PgrevokeError('connected to a standby, and its primary is not among the targets: NOLOGIN cannot be applied here', {
      exitCode: ExitCode.USAGE,
      hint: "name the primary too (--target PRIMARY --target STANDBY, or both in --fleet): the standby's sessions are ended once it has replayed the primary's NOLOGIN",
    });
  const supers = state.targets.filter((t) => t.superuser).map((t) => JSON.stringify(t.name));
  if (!op.superuser && supers.length)
    return new PgrevokeError(`${who} cannot cut off ${supers.join(', ')}: altering or terminating a superuser role needs superuser`, {
      sqlstate: '42501',
      exitCode: ExitCode.USAGE,
      hint: 'connect as a superuser',
    });
  if (!op.superuser && !op.signalBackend && !op.memberOfTarget)
    return new PgrevokeError(
      `${who} cannot terminate the role's sessions: pg_terminate_backend needs superuser, pg_signal_backend or membership in the role`,
      {
        sqlstate: '42501',
        exitCode: ExitCode.USAGE,
        hint: 'GRANT pg_signal_backend TO the operator, or connect as a superuser',
      },
    );
  if (!op.superuser && !op.createRole && !standby)
    return new PgrevokeError(`${who} cannot set a role NOLOGIN: ALTER ROLE needs superuser or CREATEROLE`, {
      sqlstate: '42501',
      exitCode: ExitCode.USAGE,
      hint: 'connect as a superuser (or a role with CREATEROLE and pg_signal_backend)',
    });
  const noAdmin = state.targets.filter((t) => !state.adminOf.includes(t.name)).map((t) => JSON.stringify(t.name));
  if (!op.superuser && !standby && state.server.major >= 16 && noAdmin.length)
    return new PgrevokeError(
      `${who} cannot alter ${noAdmin.join(', ')}: since PostgreSQL 16 a CREATEROLE role may alter only roles it holds ADMIN OPTION on`,
      {
        sqlstate: '42501',
        exitCode: ExitCode.USAGE,
        hint: 'connect as a superuser, or GRANT the role TO the operator WITH ADMIN OPTION',
      },
    );
  return null;
}
