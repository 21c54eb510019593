// pgrevoke serve over a journal it cannot read (issue 17's red team), as a subprocess: a line that
// is JSON and not a journal line refuses the start with exit 2 and one line naming
// journal.jsonl:N and what is wrong (and the hint line), no stack trace
// (as does a bad line of own-cutoffs.jsonl) (that is --debug's), the file left as it was;
// nothing listens. The target is never reached (a closed port): the journal is read first.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import { baseConfig, serveDir } from './serve-harness.js';

const EVENT = {
  id: 'a',
  key: 'k',
  provider: 'github',
  action: 'deactivate',
  identity: { github: 'alice-gh' },
  summary: 's',
  receivedAt: '2026-01-01T00:00:00.000Z',
};

describe('pgrevoke serve: a journal line that is not a journal line', () => {
  for (const bad of ['null', JSON.stringify({ type: 'accepted' }), JSON.stringify({ type: 'accepted', event: EVENT, roles: 'postgres' })])
    it(`exit 2, one line naming journal.jsonl:2: ${bad.slice(0, 50)}`, async () => {
      const d = await serveDir(
        baseConfig('targets: [ "postgresql://u@127.0.0.1:1/postgres" ]\nidentities:\n  - { github: alice-gh, roles: [alice] }'),
      );
      await fs.mkdir(path.join(d.state, 'serve'), { recursive: true, mode: 0o700 });
      await fs.chmod(d.state, 0o700);
      const file = path.join(d.state, 'serve', 'journal.jsonl');
      const text = `${JSON.stringify({ type: 'accepted', event: { ...EVENT, id: 'b', key: 'ok' }, roles: ['alice'] })}\n${bad}\n`;
      await fs.writeFile(file, text, { mode: 0o600 });
      for (const debug of [false, true]) {
        const run = startCli(['serve', '--config', d.config, ...(debug ? ['--debug'] : [])], d.env, { timeoutMs: 30_000 });
        expect(await run.exited).toBe(2);
        const err = run.stderr();
        expect(err).not.toMatch(/listening on/);
        expect(err).toMatch(/journal\.jsonl:2 is not a journal line/);
        expect(err).not.toMatch(/TypeError/);
        if (debug) expect(err).toMatch(/\n\s+at /);
        // the error's one line and the CLI's hint line
        else expect(err.trim().split('\n')).toEqual([expect.stringMatching(/^pgrevoke: error: /), expect.stringMatching(/^hint: /)]);
        expect(await fs.readFile(file, 'utf8')).toBe(text);
      }
    });

  it('the own-cutoffs ledger likewise: exit 2 naming own-cutoffs.jsonl:1', async () => {
    const d = await serveDir(
      baseConfig('targets: [ "postgresql://u@127.0.0.1:1/postgres" ]\nidentities:\n  - { github: alice-gh, roles: [alice] }'),
    );
    await fs.mkdir(path.join(d.state, 'serve'), { recursive: true, mode: 0o700 });
    await fs.chmod(d.state, 0o700);
    await fs.writeFile(path.join(d.state, 'serve', 'own-cutoffs.jsonl'), 'null\n', { mode: 0o600 });
    const run = startCli(['serve', '--config', d.config], d.env, { timeoutMs: 30_000 });
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toMatch(/^pgrevoke: error: \S*own-cutoffs\.jsonl:1 is not an own-cutoffs line/);
    expect(run.stderr()).not.toMatch(/listening on|\n\s+at /);
  });
});
