// The README's main-job command, run as a user would on a fresh clone: no Postgres set up by hand.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('pgrevoke demo', () => {
  it('stages a compromise, contains it, and proves it from the attacker side (exit 0)', async () => {
    const r = await runCli(['demo'], {}, { timeoutMs: 120_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain('Role "mallory" (oid');
    expect(r.stdout).toContain('EXPOSED');
    expect(r.stdout).toContain('hba.reject_shadowed');
    expect(r.stdout).toMatch(/attacker queries in the 1\.5 s after: +0 escaped/);
    expect(r.stdout).toMatch(/bystander's blocked UPDATE went through: +yes/);
    expect(r.stdout).toContain('CONTAINED and verified.');
    expect(r.stderr).toContain('$ pgrevoke cutoff mallory --yes');
    expect(r.stdout + r.stderr).not.toMatch(/demopw_[a-z0-9]{6,}/); // the generated superuser password never shows (a prefix no temp path has)
  });

  it('--json prints one document with the cutoff report and the proof', async () => {
    const r = await runCli(['demo', '--json', '--attack-sessions', '10'], {}, { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      proof: { contained: boolean; attackerQueriesAfterCutoff: number; attackerQueriesBefore: number };
      cutoff: { exitCode: number; verification: { verdict: string }[] };
      inspectBefore: { verdict: string };
      inspectAfter: { verdict: string };
    };
    expect(doc.inspectBefore.verdict).toBe('exposed');
    expect(doc.cutoff.exitCode).toBe(0);
    expect(doc.cutoff.verification[0]!.verdict).toBe('contained');
    expect(doc.inspectAfter.verdict).toBe('contained');
    expect(doc.proof.attackerQueriesBefore).toBeGreaterThan(0);
    expect(doc.proof.attackerQueriesAfterCutoff).toBe(0);
    expect(doc.proof.contained).toBe(true);
  });

  it('on a terminal that reports no width (script(1) without a size) it prints plain progress and finishes', async () => {
    // ora cannot redraw in place without a width; it used to flood the terminal with erase sequences and never finish
    const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/pgrevoke.js');
    const r = spawnSync('script', ['-qec', `${process.execPath} ${bin} demo --attack-sessions 5`, '/dev/null'], {
      encoding: 'utf8',
      timeout: 90_000,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm' },
    });
    expect(r.status, r.stdout.slice(-2000)).toBe(0);
    expect(r.stdout).toContain('CONTAINED and verified.');
    expect(r.stdout.length).toBeLessThan(500_000);
  });

  it('rejects a bad --major with exit 2 before starting anything', async () => {
    const r = await runCli(['demo', '--major', '9']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid --major');
  });
});
