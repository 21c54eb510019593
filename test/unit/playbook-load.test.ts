// Playbooks as data: the shipped ones load, and a broken one is an exit-2 error naming file, line and field.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PgrevokeError } from '../../src/errors.js';
import { loadPlaybook, parsePlaybook, resolvePlaybookPath, shippedPlaybooks } from '../../src/playbook/load.js';

function fails(text: string): PgrevokeError {
  try {
    parsePlaybook(text, 'pb.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(PgrevokeError);
    return err as PgrevokeError;
  }
  throw new Error('expected the playbook to be rejected');
}

const GOOD = `name: mine
reason: compromise
steps:
  - action: snapshot
  - action: contain
  - action: settle
    timeout_s: 3
  - action: verify
`;

describe('shipped playbooks', () => {
  it('all load and validate', () => {
    for (const name of shippedPlaybooks()) {
      const pb = loadPlaybook(name);
      expect(pb.name).toBe(name);
      expect(pb.file).toBe(resolvePlaybookPath(name));
      expect(pb.steps.filter((s) => s.action === 'contain')).toHaveLength(1);
    }
  });

  it('the default is compromise: contain, settle, then HBA (after settle), prepared, locks, subscriptions, verify', () => {
    const pb = loadPlaybook();
    expect(pb.reason).toBe('compromise');
    expect(pb.steps.map((s) => s.action)).toEqual([
      'snapshot',
      'contain',
      'settle',
      'hba_reject',
      'rollback_prepared',
      'check_locks',
      'disable_subscriptions',
      'verify',
    ]);
    const settle = pb.steps.find((s) => s.action === 'settle');
    expect(settle).toMatchObject({ timeout_s: 10, hidden_grace_ms: 250, interval_ms: 20 });
  });

  it('offboarding ends with reassign, drop owned, drop role, verify; contain-only touches nothing else', () => {
    expect(
      loadPlaybook('offboarding')
        .steps.map((s) => s.action)
        .slice(-4),
    ).toEqual(['reassign_owned', 'drop_owned', 'drop_role', 'verify']);
    expect(loadPlaybook('offboarding').reason).toBe('offboarding');
    expect(loadPlaybook('contain-only').steps.map((s) => s.action)).toEqual(['snapshot', 'contain', 'settle', 'verify']);
  });

  it('an unknown name or a missing file is exit 2', () => {
    expect(() => loadPlaybook('nope')).toThrow(/playbook not found/);
    expect(() => loadPlaybook('../etc')).toThrow(PgrevokeError);
    try {
      loadPlaybook('nope');
    } catch (err) {
      expect((err as PgrevokeError).exitCode).toBe(2);
    }
  });
});

describe('parsePlaybook', () => {
  it('accepts a good one and fills defaults', () => {
    const pb = parsePlaybook(GOOD, 'pb.yaml');
    expect(pb.steps[1]).toEqual({ action: 'contain', strip_privileges: true, rotate_password: false });
    expect(pb.steps[2]).toEqual({ action: 'settle', timeout_s: 3, hidden_grace_ms: 250, interval_ms: 20 });
  });

  it('reads a playbook from a path', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-pb-'));
    const file = path.join(dir, 'custom.yaml');
    writeFileSync(file, GOOD);
    expect(loadPlaybook(file).name).toBe('mine');
    writeFileSync(file, GOOD.replace('timeout_s: 3', 'timeout_s: -3'));
    expect(() => loadPlaybook(file)).toThrow(`invalid playbook ${file}:7: steps[2].timeout_s`);
  });

  it('names the line and field of a wrong value', () => {
    const e = fails(GOOD.replace('timeout_s: 3', 'timeout_s: soon'));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/^invalid playbook pb\.yaml:7: steps\[2\]\.timeout_s: /);
  });

  it('names the line of an unknown action', () => {
    const e = fails(GOOD.replace('  - action: verify', '  - action: nuke_everything'));
    expect(e.message).toMatch(/^invalid playbook pb\.yaml:8: steps\[3\]\.action: /);
  });

  it('names the line of an unknown field', () => {
    const e = fails(GOOD.replace('    timeout_s: 3', '    timeout_s: 3\n    timeout_ms: 5'));
    expect(e.message).toBe('invalid playbook pb.yaml:8: steps[2].timeout_ms: unknown field "timeout_ms"');
  });

  it('names the line of a bad reason', () => {
    const e = fails(GOOD.replace('reason: compromise', 'reason: because'));
    expect(e.message).toMatch(/^invalid playbook pb\.yaml:2: reason: /);
  });

  it('points a missing required field at its parent', () => {
    const e = fails(GOOD.replace('reason: compromise\n', ''));
    expect(e.message).toMatch(/^invalid playbook pb\.yaml:1: reason: /);
  });

  it('requires exactly one contain step', () => {
    expect(fails(GOOD.replace('  - action: contain\n', '')).message).toMatch(
      /^invalid playbook pb\.yaml:4: steps: a playbook needs one "contain" step/,
    );
    expect(fails(GOOD.replace('  - action: verify', '  - action: contain')).message).toMatch(
      /^invalid playbook pb\.yaml:8: steps\[3\]\.action: only one "contain" step/,
    );
  });

  it('refuses HBA before settle: the reload would wake a backend in the post-authentication window', () => {
    const e = fails(GOOD.replace('  - action: contain\n', '  - action: hba_reject\n  - action: contain\n'));
    expect(e.message).toMatch(/^invalid playbook pb\.yaml:5: steps\[1\]\.action: "hba_reject" must come after "settle"/);
  });

  it('refuses settle before contain and drop_role without reassign/drop owned', () => {
    expect(fails(GOOD.replace('  - action: snapshot', '  - action: settle')).message).toMatch(/pb\.yaml:4: steps\[0\]\.action: /);
    expect(fails(GOOD + '  - action: drop_role\n').message).toMatch(/pb\.yaml:9: steps\[4\]\.action: "drop_role" needs/);
  });

  it('names the line of a YAML syntax error', () => {
    const e = fails('name: x\nreason: compromise\nsteps:\n  - action: contain\n   bad: [\n');
    expect(e.message).toMatch(/^invalid playbook pb\.yaml:5: YAML: /);
  });
});
