import { Chalk } from 'chalk';
import { describe, expect, it } from 'vitest';
import { evaluate, toReport } from '../../src/inspect/index.js';
import { renderInspect } from '../../src/report/inspect-text.js';
import { quietFacts, SESSION } from '../fixtures/facts.js';

const ids = (f = quietFacts()) => evaluate(f).findings.map((x) => x.id);
const plain = new Chalk({ level: 0 });

describe('evaluate (pure)', () => {
  it('a NOLOGIN role with nothing left is contained, with no findings', () => {
    expect(evaluate(quietFacts())).toEqual({ verdict: 'contained', findings: [] });
  });

  const allowAll = {
    lineNumber: 1,
    ruleNumber: null,
    fileName: null,
    type: 'host',
    database: ['all'],
    userName: ['all'],
    address: 'all',
    netmask: null,
    authMethod: 'scram-sha-256',
    options: null,
    error: null,
    quoted: { database: [false], userName: [false] }, // read from the file: unquoted keywords
  };

  it('a role that can log in is exposed', () => {
    const f = quietFacts();
    f.role.canLogin = true;
    f.hba.rules = [allowAll];
    const e = evaluate(f);
    expect(e.verdict).toBe('exposed');
    expect(e.findings[0]).toMatchObject({ id: 'role.can_login', severity: 'critical', exposure: true });
  });

  it('LOGIN with every HBA path rejecting it is contained, but flagged low', () => {
    const f = quietFacts();
    f.role.canLogin = true;
    f.hba.rules = [
      { ...allowAll, userName: ['mallory'], authMethod: 'reject' },
      { ...allowAll, lineNumber: 2, type: 'local', address: null },
      { ...allowAll, lineNumber: 3 },
    ];
    f.hba.rules[1]!.authMethod = 'reject';
    f.hba.rules[1]!.userName = ['mallory'];
    const e = evaluate(f);
    expect(e.verdict).toBe('contained');
    expect(e.findings[0]).toMatchObject({ id: 'role.can_login', severity: 'low', exposure: false });
    // the same rules with a pending reload prove nothing
    f.hba.reloadPending = true;
    expect(evaluate(f).verdict).toBe('exposed');
    // and unreadable HBA proves nothing either
    f.hba = { ...f.hba, reloadPending: false, readable: false };
    expect(evaluate(f).verdict).toBe('exposed');
  });

  it('an expired role is contained when HBA admits it only through password methods', () => {
    const f = quietFacts();
    Object.assign(f.role, { canLogin: true, expired: true, validUntil: '2020-01-01 00:00:00+00' });
    f.hba.decisions = [
      {
        scenario: {
          transport: 'host',
          ssl: false,
          gss: false,
          database: 'app',
          address: '203.0.113.7',
          addressLabel: 'generic',
          replication: false,
        },
        user: 'mallory',
        connectionType: 'hostnossl',
        ruleNumber: null,
        outcome: 'allow',
        line: 2,
        fileName: null,
        authMethod: 'scram-sha-256',
        reason: null,
      },
    ];
    expect(evaluate(f).verdict).toBe('contained');
  });

  it('an expired role still admitted by trust is exposed, naming the line', () => {
    const f = quietFacts();
    Object.assign(f.role, { canLogin: true, expired: true, validUntil: '2020-01-01 00:00:00+00' });
    f.hba.decisions = [
      {
        scenario: { transport: 'local', ssl: false, gss: false, database: 'app', address: null, addressLabel: null, replication: false },
        user: 'mallory',
        connectionType: 'local',
        ruleNumber: null,
        outcome: 'allow',
        line: 1,
        fileName: null,
        authMethod: 'trust',
        reason: null,
      },
    ];
    const login = evaluate(f).findings.find((x) => x.id === 'role.can_login')!;
    expect(login.exposure).toBe(true);
    expect(login.detail).toContain('line 1 (trust)');
  });

  it('an expired role with unreadable HBA cannot be called contained', () => {
    const f = quietFacts();
    Object.assign(f.role, { canLogin: true, expired: true, validUntil: '2020-01-01' });
    f.hba = { ...f.hba, readable: false, unreadableReason: 'permission denied' };
    expect(evaluate(f).verdict).toBe('exposed');
  });

  it('sessions and prepared transactions are exposures; hidden backends and blocking are not by themselves', () => {
    expect(evaluate(quietFacts({ sessions: [SESSION] })).verdict).toBe('exposed');
    expect(
      evaluate(
        quietFacts({
          preparedTransactions: [{ gid: 'g1', database: 'app', transaction: '700', prepared: 'now', ageSeconds: 12, locks: 3, holds: [] }],
        }),
      ).verdict,
    ).toBe('exposed');
    const f = quietFacts({ hiddenBackends: [{ pid: 9, via: 'virtualxid', backendStart: null, clientAddr: null }] });
    expect(evaluate(f).verdict).toBe('contained');
    expect(ids(f)).toContain('sessions.hidden');
  });

  it('prepared transaction remediation runs ROLLBACK PREPARED in its database with quoting', () => {
    const f = quietFacts({
      preparedTransactions: [{ gid: "it's", database: 'My DB', transaction: '1', prepared: 'now', ageSeconds: 1, locks: 0, holds: [] }],
    });
    const px = evaluate(f).findings.find((x) => x.id === 'prepared_xacts')!;
    expect(px.remediation).toBe(`in "My DB": ROLLBACK PREPARED 'it''s'`);
  });

  it('walsenders are counted among sessions', () => {
    const f = quietFacts({ sessions: [SESSION, { ...SESSION, pid: 5, backendType: 'walsender' }] });
    expect(evaluate(f).findings.find((x) => x.id === 'sessions.active')!.detail).toContain('1 walsender');
  });

  it('locks.blocking names the waiter and the blocker, pid or prepared gid', () => {
    const f = quietFacts({
      blocking: [
        {
          blockedPid: 77,
          blockedUser: 'alice',
          blockedDatabase: 'app',
          blockedQuery: 'UPDATE',
          waitingSeconds: 3,
          blockerPid: 4242,
          blockerGid: null,
        },
        {
          blockedPid: 78,
          blockedUser: 'bob',
          blockedDatabase: 'app',
          blockedQuery: 'UPDATE',
          waitingSeconds: 3,
          blockerPid: null,
          blockerGid: 'g1',
        },
      ],
    });
    const b = evaluate(f).findings.find((x) => x.id === 'locks.blocking')!;
    expect(b.detail).toContain('77 (alice) waits on pid 4242');
    expect(b.detail).toContain("78 (bob) waits on prepared xact 'g1'");
  });

  it('operator findings follow what the operator lacks', () => {
    const f = quietFacts();
    f.role.superuser = true;
    f.operator = {
      user: 'oncall',
      superuser: false,
      createRole: true,
      signalBackend: false,
      memberOfTarget: false,
      readHba: false,
      reload: false,
      statFile: false,
    };
    expect(ids(f)).toEqual(
      expect.arrayContaining([
        'operator.cannot_alter_role',
        'operator.cannot_signal',
        'operator.cannot_terminate_superuser',
        'operator.no_hba_access',
        'operator.cannot_reload',
      ]),
    );
    f.operator = { ...f.operator, superuser: true, readHba: true, reload: true };
    // a superuser target can fill even the superuser-reserved slots
    expect(ids(f).filter((i) => i.startsWith('operator.'))).toEqual(['operator.no_reserved_slot']);
    f.role.superuser = false;
    expect(ids(f).filter((i) => i.startsWith('operator.'))).toEqual([]);
  });

  it('findings are sorted by severity', () => {
    const f = quietFacts({ sessions: [SESSION], server: { ...quietFacts().server, inRecovery: true } });
    f.role.bypassRls = true;
    const sev = evaluate(f).findings.map((x) => x.severity);
    const order = ['critical', 'high', 'medium', 'low', 'info'];
    expect(sev.map((s) => order.indexOf(s))).toEqual([...sev.map((s) => order.indexOf(s))].sort((a, b) => a - b));
  });
});

describe('inspect renderers', () => {
  it('text: verdict header, truncated query, findings with remediation, no color codes', () => {
    const f = quietFacts({ sessions: [SESSION] });
    f.role.canLogin = true;
    const text = renderInspect(toReport(f), plain);
    expect(text).toContain('Role "mallory" (oid 16384): EXPOSED');
    expect(text).toContain('4242');
    expect(text).toContain('COPY (SELECT * FROM customers)');
    expect(text).not.toContain('x'.repeat(100));
    expect(text).toContain('fix:');
    expect(text).not.toContain('\u001b[');
  });

  it('JSON: the documented keys, and the query kept whole', () => {
    const report = toReport(quietFacts({ sessions: [SESSION] }));
    expect(Object.keys(report).sort()).toEqual(
      [
        'administeredRoles',
        'blocking',
        'connectionSlots',
        'failedLogins',
        'failedLoginsUnreadable',
        'findings',
        'hba',
        'hiddenBackends',
        'locks',
        'operator',
        'persistence',
        'preparedTransactions',
        'role',
        'schemaVersion',
        'server',
        'sessions',
        'verdict',
      ].sort(),
    );
    expect(report.sessions[0]!.query).toBe(SESSION.query);
  });

  it('text says plainly when HBA is unreadable', () => {
    const f = quietFacts();
    f.hba = { ...f.hba, readable: false, unreadableReason: 'permission denied: needs superuser' };
    expect(renderInspect(toReport(f), plain)).toContain('unreadable: permission denied: needs superuser');
  });
});
