// JUnit XML for CI: one test case per role and check; failures say what to do.
import type { VerifyReport } from '../verify/index.js';

function xml(text: string): string {
  return (
    text
      // characters XML 1.0 cannot carry at all
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

export function renderJunit(report: VerifyReport, timestamp = new Date()): string {
  const cases = report.roles.flatMap((r) => r.checks.map((c) => ({ role: r.role, c })));
  const failures = cases.filter((x) => x.c.status === 'fail').length;
  const errors = cases.filter((x) => x.c.status === 'error').length;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="pgrevoke verify" tests="${cases.length}" failures="${failures}" errors="${errors}">`,
    `  <testsuite name="pgrevoke verify" tests="${cases.length}" failures="${failures}" errors="${errors}" timestamp="${timestamp.toISOString()}">`,
  ];
  for (const { role, c } of cases) {
    const head = `    <testcase classname="${xml(`role ${role}`)}" name="${xml(c.name)}">`;
    const body = `${c.message}${c.remediation ? `\nfix: ${c.remediation}` : ''}`;
    if (c.status === 'pass') lines.push(`${head}<system-out>${xml(c.message)}</system-out></testcase>`);
    else {
      const tag = c.status === 'fail' ? 'failure' : 'error';
      lines.push(head, `      <${tag} message="${xml(c.message)}" type="${c.name}">${xml(body)}</${tag}>`, '    </testcase>');
    }
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}

/** GitHub Actions workflow commands: one ::error per failing check. */
export function githubAnnotations(report: VerifyReport): string[] {
  const esc = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  const prop = (s: string) => esc(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
  return report.roles.flatMap((r) =>
    r.checks
      .filter((c) => c.status !== 'pass')
      .map(
        (c) =>
          `::error title=${prop(`pgrevoke verify: ${r.role} ${c.name}`)}::${esc(`${c.message}${c.remediation ? ` -- fix: ${c.remediation}` : ''}`)}`,
      ),
  );
}
