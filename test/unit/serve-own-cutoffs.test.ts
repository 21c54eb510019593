// serve's own-cutoffs ledger on a real state directory: every line read back is checked (a line
// that is JSON and not a ledger line is refused naming file:line, not skipped; a torn last line is
// skipped), and at start it is compacted: a line stays while its cutoff record has a role not
// restored, or within journal_keep; the rest is dropped, the file rewritten only then.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compactOwnCutoffs, ownCutoffs } from '../../src/serve/own-cutoffs.js';

const DAY = 86_400_000;
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

async function state(): Promise<{ env: NodeJS.ProcessEnv; ledger: string; records: string }> {
  const st = await fs.mkdtemp(path.join(os.tmpdir(), 'pgrevoke-own-'));
  dirs.push(st);
  await fs.chmod(st, 0o700);
  for (const d of ['serve', 'records']) await fs.mkdir(path.join(st, d), { mode: 0o700 });
  return { env: { PGREVOKE_STATE_DIR: st }, ledger: path.join(st, 'serve', 'own-cutoffs.jsonl'), records: path.join(st, 'records') };
}

/** A cutoff record of `role` on node n1, as `pgrevoke cutoff` writes one (begin line), restored or not. */
async function record(dir: string, name: string, role: string, restored: boolean): Promise<string> {
  const file = path.join(dir, `${name}.jsonl`);
  const begin = {
    type: 'begin',
    schemaVersion: 1,
    startedAt: `2026-01-0${name.slice(-1)}T00:00:00.000Z`,
    playbook: 'contain',
    operator: { osUser: 'u', host: 'h' },
    reasonText: null,
    nodes: [{ node: 'n1', systemIdentifier: null, standby: false, plan: { roles: [{ name: role }] } }],
  };
  const lines = [begin, ...(restored ? [{ type: 'restored', at: '2026-01-09T00:00:00.000Z', node: 'n1', role }] : [])];
  await fs.writeFile(file, lines.map((l) => `${JSON.stringify(l)}\n`).join(''), { mode: 0o600 });
  return file;
}

const own = (record: string, at: string, github = 'alice-gh') => JSON.stringify({ event: 'e', at, identity: { github }, record });

describe('serve own-cutoffs ledger', () => {
  it('compaction keeps what a reactivation may still restore and what is recent; drops the rest', async () => {
    const { env, ledger, records } = await state();
    const old = new Date(Date.now() - 30 * DAY).toISOString();
    const recent = new Date(Date.now() - DAY).toISOString();
    const live = await record(records, 'r1', 'alice', false);
    const spent = await record(records, 'r2', 'alice', true);
    const spentRecent = await record(records, 'r3', 'alice', true);
    const gone = path.join(records, 'r4.jsonl');
    const text = [own(live, old), own(spent, old), own(spentRecent, recent), own(gone, old), own(gone, 'when?')].join('\n') + '\n';
    await fs.writeFile(ledger, text, { mode: 0o600 });
    await compactOwnCutoffs({ dryRun: false, keepMs: 7 * DAY }, env);
    const kept = (await fs.readFile(ledger, 'utf8')).trim().split('\n');
    expect(kept).toEqual([own(live, old), own(spentRecent, recent), own(gone, 'when?')]);
    expect((await fs.stat(ledger)).mode & 0o777).toBe(0o600);
    expect([...(await ownCutoffs({ github: 'ALICE-gh' }, false, env))]).toEqual([live, spentRecent, gone]);
    // nothing more to drop: left as it is (same inode)
    const ino = (await fs.stat(ledger)).ino;
    await compactOwnCutoffs({ dryRun: false, keepMs: 7 * DAY }, env);
    expect((await fs.stat(ledger)).ino).toBe(ino);
  });

  it('a torn last line is dropped by the rewrite; no ledger: nothing written', async () => {
    const { env, ledger, records } = await state();
    await compactOwnCutoffs({ dryRun: false, keepMs: 7 * DAY }, env);
    await expect(fs.stat(ledger)).rejects.toThrow(/ENOENT/);
    const live = await record(records, 'r1', 'alice', false);
    const line = own(live, new Date().toISOString());
    await fs.writeFile(ledger, `${line}\n{"event":"e","at`, { mode: 0o600 });
    expect([...(await ownCutoffs({ github: 'alice-gh' }, false, env))]).toEqual([live]);
    await compactOwnCutoffs({ dryRun: false, keepMs: 7 * DAY }, env);
    expect(await fs.readFile(ledger, 'utf8')).toBe(`${line}\n`);
  });

  for (const bad of ['null', '{"event":"e"}', JSON.stringify({ event: 'e', at: 'x', identity: { github: 'alice-gh' }, record: 42 })])
    it(`a line that is not a ledger line is refused, naming the file and line 2: ${bad}`, async () => {
      const { env, ledger } = await state();
      await fs.writeFile(ledger, `${own('r', 'x')}\n${bad}\n`, { mode: 0o600 });
      for (const read of [
        () => ownCutoffs({ github: 'alice-gh' }, false, env),
        () => compactOwnCutoffs({ dryRun: false, keepMs: DAY }, env),
      ]) {
        const err = (await read().catch((e: unknown) => e)) as Error & { exitCode?: number };
        expect(err.message).toMatch(/own-cutoffs\.jsonl:2 is not/);
        expect(err.exitCode).toBe(2);
      }
    });
});
