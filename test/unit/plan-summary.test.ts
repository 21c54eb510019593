// The confirmation's summary over hand-built plans and facts: every fact in its line, and the lists
// cut so that the whole fits the lines it is given, however many sessions and exposures there are.
import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import type { SessionRow } from '../../src/checks/types.js';
import type { ConfirmFacts, DoomedSession } from '../../src/playbook/confirm-facts.js';
import type { Plan } from '../../src/playbook/model.js';
import { renderPlanSummary } from '../../src/report/plan-summary.js';
import { ADMIN, planOf } from './steps/fixtures.js';

const c = new Chalk({ level: 0 });

function session(pid: number, over: Partial<DoomedSession> = {}): DoomedSession {
  const row: SessionRow = {
    pid,
    database: 'app',
    user: 'mallory',
    userOid: 16500,
    clientAddr: '10.1.2.3',
    clientPort: 40000 + pid,
    applicationName: 'psql',
    backendType: 'client backend',
    state: 'idle',
    backendStart: null,
    xactStart: null,
    stateChange: null,
    waitEventType: null,
    waitEvent: null,
    queryId: null,
    query: 'SELECT 1',
  };
  return { ...row, role: 'mallory', runningS: null, ...over };
}

function facts(over: Partial<ConfirmFacts> = {}): ConfirmFacts {
  return { sessions: [], hidden: [], blocked: [], error: null, ...over };
}

/** The default playbook's shape: contain, settle, hba_reject, a rollback of 'stash', verify. */
function plan(over: Partial<Plan> = {}): Plan {
  const p = planOf([
    { action: 'contain', database: null, role: null, sql: ['ALTER ROLE "mallory" NOLOGIN'], reason: 'r' },
    { action: 'settle', database: null, role: null, sql: [], reason: 'r' },
    { action: 'hba_reject', database: null, role: null, sql: ['-- prepend'], reason: 'r', file: '/etc/postgresql/15/main/pg_hba.conf' },
    { action: 'rollback_prepared', database: 'app', role: 'mallory', gid: 'stash', sql: ["ROLLBACK PREPARED 'stash'"], reason: 'r' },
    { action: 'verify', database: null, role: null, sql: [], reason: 'r' },
  ]);
  const roles = [
    {
      name: 'mallory',
      oid: 16500,
      before: { canLogin: true, superuser: false, createRole: false, connectionLimit: -1, validUntil: null },
      restoreSql: '',
    },
  ];
  return { ...p, roles, ...over };
}

describe('renderPlanSummary', () => {
  it('says per fact what will happen: sessions with the longest query, hidden, prepared, blocked, pg_hba.conf', () => {
    const f = facts({
      sessions: [
        session(101, { state: 'active', runningS: 5, query: 'SELECT count(*) FROM t' }),
        session(102, { state: 'active', runningS: 125, query: 'SELECT pg_sleep(600)' }),
        session(103, { state: 'idle in transaction', clientAddr: null, clientPort: -1 }),
      ],
      hidden: [{ pid: 300, via: 'virtualxid', backendStart: null, clientAddr: null }],
      blocked: [
        {
          blockedPid: 200,
          blockedUser: 'alice',
          blockedDatabase: 'app',
          blockedQuery: 'UPDATE',
          waitingSeconds: 3,
          blockerPid: 103,
          blockerGid: null,
        },
      ],
    });
    const lines = renderPlanSummary([{ plan: plan(), facts: f }], [], c, { columns: 80, lines: 20 }).split('\n');
    expect(lines[0]).toBe('Cutoff "mallory" on db.example:5432 (PostgreSQL 16)');
    expect(lines[1]).toBe('playbook test-playbook, as postgres (superuser); nothing changed yet');
    expect(lines[2]).toBe('Terminate 3 sessions: pids 101, 102, 103');
    expect(lines).toContainEqual(expect.stringMatching(/^ +103 +mallory +local +in xact +SELECT 1$/));
    expect(lines).toContain('  longest-running query cut short: pid 102, 2m5s: SELECT pg_sleep(600)');
    expect(lines).toContain('Hidden backends now: 1 (pids 300): ended if still hidden 250 ms after NOLOGIN');
    expect(lines).toContain('Release 1 blocked session: 200 (alice) on pid 103');
    expect(lines).toContain(`Roll back 1 prepared transaction: 'stash' in "app"`);
    expect(lines).toContain('Edit /etc/postgresql/15/main/pg_hba.conf: reject lines on top, reload');
    expect(lines).toContain('Stays open: nothing the plan knows of');
  });

  it('fits the lines it is given: with 40 sessions and 12 exposures at 80x24 the lists are cut and say how many more', () => {
    const many = Array.from({ length: 40 }, (_, i) => session(1000 + i));
    const exposure = Array.from({ length: 12 }, (_, i) => `prepared transaction ${i} of "mallory": ${'not possible: '.repeat(10)}`);
    const text = renderPlanSummary([{ plan: plan({ exposure, warnings: ['one warning'] }), facts: facts({ sessions: many }) }], [], c, {
      columns: 80,
      lines: 20,
    });
    const lines = text.split('\n');
    expect(lines.length).toBeLessThanOrEqual(20);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    expect(lines[2]).toMatch(/^Terminate 40 sessions: pids 1000, 1001, .*\u2026$/);
    expect(lines).toContainEqual(expect.stringMatching(/^ +\u2026 and \d+ more$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}\u2026 and \d+ more \(s shows them all\)$/));
    expect(lines).toContain('Not possible here, or stays open:');
    expect(lines).toContain('  no query is running now (every session is idle)');
  });

  it('a non-superuser: the rollback it cannot do is counted apart and its exposure listed; a skipped HBA edit says why', () => {
    const p = plan({
      operator: ADMIN,
      exposure: [`prepared transaction of "mallory" 'stash' in "app": not possible: ops is not a superuser`],
    });
    p.steps = p.steps.map((s) =>
      s.action === 'rollback_prepared'
        ? { ...s, sql: [], skip: 'not possible' }
        : s.action === 'hba_reject'
          ? { ...s, skip: 'no file access: the server is remote' }
          : s,
    );
    const lines = renderPlanSummary([{ plan: p, facts: facts() }], [], c, { columns: 120, lines: 20 }).split('\n');
    expect(lines).toContain('Roll back 0 prepared transactions; 1 cannot be (below)');
    expect(lines).toContain('pg_hba.conf: not edited: no file access: the server is remote');
    expect(lines).toContain('Terminate: no session of the role is open now');
    expect(lines).toContain(`  - prepared transaction of "mallory" 'stash' in "app": not possible: ops is not a superuser`);
  });

  it("a query's control characters cannot act on the terminal", () => {
    const f = facts({ sessions: [session(9, { state: 'active', runningS: 2, query: 'SELECT 1 /* \x1b]0;owned\x07 \u202e */' })] });
    const text = renderPlanSummary([{ plan: plan(), facts: f }], [], c, { columns: 120, lines: 20 });
    for (const ch of ['\x1b', '\x07', '\u202e']) expect(text).not.toContain(ch);
    expect(text).toContain('SELECT 1 /* \ufffd]0;owned\ufffd \ufffd */');
  });

  it('a read that failed says so, and the plan still stands', () => {
    const lines = renderPlanSummary([{ plan: plan(), facts: facts({ error: 'permission denied' }) }], [], c, {
      columns: 80,
      lines: 20,
    }).split('\n');
    expect(lines).toContain('Could not read the live sessions (the plan stands): permission denied');
    expect(lines).toContain(`Roll back 1 prepared transaction: 'stash' in "app"`);
  });

  it('several nodes: a few lines each', () => {
    const a = {
      plan: plan({ node: 'billing-1' }),
      facts: facts({ sessions: [session(7, { state: 'active', runningS: 1.5, query: 'SELECT 2' })] }),
    };
    const b = { plan: plan({ node: 'billing-2', server: { version: '16', major: 16, inRecovery: true } }), facts: facts() };
    const lines = renderPlanSummary([a, b], [], c, { columns: 100, lines: 20 }).split('\n');
    expect(lines[0]).toBe('Cutoff "mallory" on billing-1 (PostgreSQL 16), as postgres (superuser)');
    expect(lines).toContain('  Terminate 1 session: pids 7');
    expect(lines).toContain('    longest-running query cut short: pid 7, 1.5s: SELECT 2');
    expect(lines).toContain('Cutoff "mallory" on billing-2 (PostgreSQL 16, standby), as postgres (superuser)');
    expect(lines.length).toBeLessThanOrEqual(10);
  });
});
