// Kept apart from the evaluator (and its IP math) so that cutoff's critical path stays light.

/**
 * Does this pg_hba_file_rules error make PostgreSQL refuse the whole file on reload?
 * "hostssl record cannot match because SSL is disabled" (and the hostgssenc / no-GSS-build
 * variant) are reported in the view but the line is still loaded (it just never matches),
 * so the reload goes through. Every other error makes load_hba() keep the previous rules.
 * The view's error text is not translated, so matching it is stable.
 */
export function isBlockingHbaError(error: string): boolean {
  return !/ record cannot match because /.test(error);
}
