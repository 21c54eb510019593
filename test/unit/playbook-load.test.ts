// Playbooks as data: the shipped ones load, and a broken one is an exit-2 error naming file, line and field.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PgrevokeError } from '../../src/errors.js';
import { loadPlaybook, resolvePlaybookPath, sha256, shippedPlaybooks } from '../../src/playbook/load.js';
import { parsePlaybook } from '../../src/playbook/schema.js';

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
  it('all load and validate', async () => {
    for (const name of shippedPlaybooks()) {
      const pb = await loadPlaybook(name);
      expect(pb.name).toBe(name);
      expect(pb.file).toBe(resolvePlaybookPath(name));
      expect(pb.steps.filter((s) => s.action === 'contain')).toHaveLength(1);
    }
  });

  it('the default is compromise: contain, settle, then HBA (after settle), prepared, locks, subscriptions, verify', async () => {
    const pb = await loadPlaybook();
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

  it('offboarding ends with reassign, drop owned, drop role, verify; contain-only touches nothing else', async () => {
    const off = await loadPlaybook('offboarding');
    expect(off.steps.map((s) => s.action).slice(-4)).toEqual(['reassign_owned', 'drop_owned', 'drop_role', 'verify']);
    expect(off.reason).toBe('offboarding');
    expect((await loadPlaybook('contain-only')).steps.map((s) => s.action)).toEqual(['snapshot', 'contain', 'settle', 'verify']);
  });

  it('an unknown name or a missing file is exit 2', async () => {
    await expect(loadPlaybook('nope')).rejects.toThrow(/playbook not found/);
    await expect(loadPlaybook('../etc')).rejects.toThrow(PgrevokeError);
    await expect(loadPlaybook('nope')).rejects.toMatchObject({ exitCode: 2 });
  });

  it('the build compiles every shipped playbook to the same data the YAML parses to, keyed by its hash', () => {
    const compiledFile = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../dist/playbooks.json');
    const compiled = JSON.parse(readFileSync(compiledFile, 'utf8')) as Record<string, { sha256: string; playbook: unknown }>;
    expect(Object.keys(compiled).sort()).toEqual(
      shippedPlaybooks()
        .map((n) => `${n}.yaml`)
        .sort(),
    );
    for (const name of shippedPlaybooks()) {
      const file = resolvePlaybookPath(name);
      const text = readFileSync(file, 'utf8');
      const { file: _f, ...fresh } = parsePlaybook(text, file);
      expect(compiled[`${name}.yaml`]).toEqual({ sha256: sha256(text), playbook: fresh });
    }
  });
});

describe('parsePlaybook', () => {
  it('accepts a good one and fills defaults', () => {
    const pb = parsePlaybook(GOOD, 'pb.yaml');
    expect(pb.steps[1]).toEqual({ action: 'contain', strip_privileges: true, rotate_password: false });
    expect(pb.steps[2]).toEqual({ action: 'settle', timeout_s: 3, hidden_grace_ms: 250, interval_ms: 20 });
  });

  it('reads a playbook from a path', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-pb-'));
    const file = path.join(dir, 'custom.yaml');
    writeFileSync(file, GOOD);
    expect((await loadPlaybook(file)).name).toBe('mine');
    writeFileSync(file, GOOD.replace('timeout_s: 3', 'timeout_s: -3'));
    await expect(loadPlaybook(file)).rejects.toThrow(`invalid playbook ${file}:7: steps[2].timeout_s`);
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
