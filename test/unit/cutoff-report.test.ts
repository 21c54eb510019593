// The cutoff report's renderers and exit codes, over one hand-made report (no server).
import { chmodSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { Interrupt } from '../../src/playbook/interrupt.js';
import { exitCodeFor, type CutoffReport, type ReportStep } from '../../src/record/cutoff-report.js';
import { AUDIT_REASONS, appendAudit } from '../../src/record/audit.js';
import { auditEntries } from '../../src/record/cutoff-audit.js';
import { renderCutoff, renderMarkdown } from '../../src/report/cutoff.js';

const c = new Chalk({ level: 0 });

function stepOf(action: ReportStep['action'], status: ReportStep['status'], extra: Partial<ReportStep> = {}): ReportStep {
  return {
    index: 0,
    action,
    node: 'db:5432',
    database: null,
    role: null,
    sql: [],
    reason: 'r',
    skip: null,
    status,
    executed: [],
    startedAt: '2030-01-01T00:00:00.000Z',
    durationMs: 3,
    detail: `${action} detail`,
    ...extra,
  };
}

function report(extra: Partial<CutoffReport> = {}): CutoffReport {
  const steps = [
    stepOf('snapshot', 'done'),
    stepOf('contain', 'done', { executed: [`ALTER ROLE "a|b" PASSWORD '*****'`] }),
    stepOf('rollback_prepared', 'done', { role: 'a|b', database: 'app' }),
    stepOf('verify', 'done'),
  ];
  steps.forEach((s, i) => (s.index = i));
  return {
    schemaVersion: 1,
    roles: [
      {
        name: 'a|b',
        oid: 16400,
        before: { canLogin: true, superuser: true, createRole: false, connectionLimit: -1, validUntil: null },
        restoreSql: 'ALTER ROLE "a|b" LOGIN CONNECTION LIMIT -1 SUPERUSER',
      },
      {
        name: 'other',
        oid: 16401,
        before: { canLogin: true, superuser: false, createRole: false, connectionLimit: -1, validUntil: null },
        restoreSql: 'x',
      },
    ],
    playbook: { name: 'compromised-credential', file: '/p.yaml', reason: 'compromise', description: null },
    dryRun: false,
    node: 'db:5432',
    server: { version: 'PostgreSQL 18', major: 18, inRecovery: false },
    operator: { user: 'postgres', osUser: 'ops', host: 'box', superuser: true },
    reasonText: 'SEC-42',
    startedAt: '2030-01-01T00:00:00.000Z',
    finishedAt: '2030-01-01T00:00:01.000Z',
    committedAt: '2030-01-01 00:00:00.5+00',
    commitLsn: '0/3000148',
    replay: null,
    contain: null,
    steps,
    snapshot: null,
    terminated: [
      {
        node: 'db1:5432',
        pid: 4242,
        role: 'a|b',
        user: 'a|b',
        database: 'app',
        client: '10.0.0.9',
        application: 'psql',
        backendType: 'client backend',
        state: 'active',
        backendStart: '2030',
        xactStart: null,
        query: 'SELECT secret | pipe',
        hidden: false,
        signalled: true,
        at: 'x',
      },
    ],
    settle: null,
    locks: null,
    hba: null,
    verification: [
      {
        role: 'a|b',
        oid: 16400,
        verdict: 'contained',
        findings: [],
        after: { canLogin: false, superuser: false, createRole: false, connectionLimit: 0 },
      },
    ],
    exposure: [],
    warnings: [],
    interrupted: false,
    exitCode: 0,
    ...extra,
  };
}

describe('exit codes', () => {
  const base = { interrupted: false, dryRun: false, exposure: [] as string[], steps: [stepOf('contain', 'done')] };
  it('0 contained, 1 exposure, 2 failed before any change, 3 failed after one or interrupted', () => {
    expect(exitCodeFor(base, true)).toBe(0);
    expect(exitCodeFor({ ...base, exposure: ['x'] }, true)).toBe(1);
    expect(exitCodeFor({ ...base, steps: [stepOf('contain', 'failed')] }, false)).toBe(2);
    expect(exitCodeFor({ ...base, steps: [stepOf('contain', 'failed')] }, true)).toBe(3);
    expect(exitCodeFor({ ...base, interrupted: true }, false)).toBe(3);
    expect(exitCodeFor({ ...base, dryRun: true, exposure: ['x'] }, false)).toBe(0);
  });
});

describe('Interrupt', () => {
  it('cuts a sleep short', async () => {
    const i = new Interrupt();
    const t = Date.now();
    setTimeout(() => i.trigger(), 20);
    await i.sleep(5000);
    expect(Date.now() - t).toBeLessThan(1000);
    expect(i.interrupted).toBe(true);
  });
});

describe('renderers', () => {
  it('text: steps with status and timing, terminated sessions, verdict, exit meaning', () => {
    const out = renderCutoff(report(), c);
    expect(out).toContain('CONTAINED');
    expect(out).toMatch(/DONE\s+contain 3 ms/);
    expect(out).toContain('4242');
    expect(out).toContain('exit 0: contained and verified');
    expect(renderCutoff(report({ dryRun: true }), c)).toContain('exit 0: dry run, nothing was changed');
    expect(renderCutoff(report({ exitCode: 1, exposure: ['"a|b": prepared_xacts: x'] }), c)).toContain('Exposure remains:');
  });

  it('markdown: a ticket with outcome, operator, reason, steps, sessions; table cells escaped', () => {
    const md = renderMarkdown(report());
    expect(md).toContain('# pgrevoke cutoff: `a|b`, `other`');
    expect(md).toContain('- **Outcome:** exit 0, contained and verified');
    expect(md).toContain('- **Operator:** postgres as ops@box');
    expect(md).toContain('- **Reason given:** SEC-42');
    expect(md).toContain('| 4242 | a\\|b | app | 10.0.0.9 | psql |');
    expect(md).toContain('SELECT secret \\| pipe');
    expect(md).toContain('`ALTER ROLE "a\\|b" LOGIN CONNECTION LIMIT -1 SUPERUSER`');
  });
});

describe('audit', () => {
  it('exports the reason vocabulary', () => {
    expect(AUDIT_REASONS).toEqual([
      'compromise',
      'offboarding',
      'admin_kill',
      'role_nologin',
      'role_dropped',
      'role_expired',
      'denylisted',
      'idle_timeout',
      'membership_revoked',
      'lockout',
      'address_ban',
      'unlock',
      'lockout_expired',
      'reactivation',
    ]);
  });

  it('one entry per action and target; planned steps are not actions', () => {
    const r = report();
    r.steps.push(stepOf('check_locks', 'planned'));
    const entries = auditEntries(r, 'SEC-42');
    // snapshot, contain and verify for both roles, rollback for its one role
    expect(entries.map((e) => `${e.action}:${e.target}`)).toEqual([
      'snapshot:a|b',
      'snapshot:other',
      'contain:a|b',
      'contain:other',
      'rollback_prepared:a|b',
      'verify:a|b',
      'verify:other',
    ]);
    expect(entries[0]).toEqual({
      time: '2030-01-01T00:00:00.000Z',
      node: 'db:5432',
      operator: { dbUser: 'postgres', osUser: 'ops', host: 'box' },
      target: 'a|b',
      action: 'snapshot',
      reason: 'compromise',
      result: 'done',
      detail: 'snapshot detail',
      note: 'SEC-42',
    });
  });

  it('appends JSON lines to a file created 0600, and says so when it tightens a looser one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-audit-'));
    const file = path.join(dir, 'audit.log');
    await appendAudit(file, auditEntries(report()));
    await appendAudit(file, auditEntries(report()));
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(14);
    expect(JSON.parse(lines[0]!)).toMatchObject({ action: 'snapshot', reason: 'compromise' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    chmodSync(file, 0o644);
    expect(await appendAudit(file, auditEntries(report()))).toMatch(/was mode 0644.*tightened to 0600.*query texts/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
