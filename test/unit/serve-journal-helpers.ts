// What the serve journal unit tests share: a fresh state directory per call (removed after the
// file's tests), and a GitHub event input by key.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import type { ServeEventInput } from '../../src/serve/types.js';

/** Call at the top of a test file: `stateEnv()` then gives a PGREVOKE_STATE_DIR of its own each time. */
export function stateDirs(prefix: string): () => Promise<NodeJS.ProcessEnv> {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));
  return async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    dirs.push(dir);
    return { PGREVOKE_STATE_DIR: path.join(dir, 'state') };
  };
}

export const input = (key: string, action: ServeEventInput['action'] = 'deactivate'): ServeEventInput => ({
  provider: 'github',
  key,
  action,
  identity: { github: 'alice-gh' },
  summary: 'organization member_removed',
});
