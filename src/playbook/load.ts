// Playbooks are data (playbooks/*.yaml). Loading is on cutoff's path to containment, so the
// shipped ones come pre-validated from dist/playbooks.json (written by the build) when the YAML
// on disk still has the hash that was compiled; anything else is parsed and validated afresh.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ExitCode, PgrevokeError } from '../errors.js';
import { packageRoot } from '../util/package-root.js';
import type { LoadedPlaybook, Playbook } from './schema.js';

export type { LoadedPlaybook, Playbook, PlaybookStep } from './schema.js';
export type { StepAction } from './model.js';

/** The shipped playbooks, at the package root. */
export const PLAYBOOK_DIR = path.join(packageRoot(), 'playbooks');
/** Written by scripts/compile-playbooks.js after tsc: { [file name]: { sha256, playbook } }. */
export const COMPILED_PLAYBOOKS = path.join(packageRoot(), 'dist', 'playbooks.json');
export const DEFAULT_PLAYBOOK = 'compromised-credential';

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A shipped playbook by name (playbooks/<name>.yaml) or a path to a YAML file. */
export function resolvePlaybookPath(nameOrPath: string = DEFAULT_PLAYBOOK): string {
  const looksLikePath = nameOrPath.includes('/') || /\.ya?ml$/i.test(nameOrPath);
  if (looksLikePath) return path.resolve(nameOrPath);
  if (!/^[a-z0-9][a-z0-9_-]*$/i.test(nameOrPath))
    throw new PgrevokeError(`invalid playbook name "${nameOrPath}"`, { hint: 'give a shipped name or a path' });
  return path.join(PLAYBOOK_DIR, `${nameOrPath}.yaml`);
}

export function shippedPlaybooks(): string[] {
  return ['compromised-credential', 'offboarding', 'contain-only', 'revoke-app-privileges'];
}

function compiled(file: string, text: string): Playbook | null {
  if (path.dirname(file) !== PLAYBOOK_DIR || !existsSync(COMPILED_PLAYBOOKS)) return null;
  try {
    const all = JSON.parse(readFileSync(COMPILED_PLAYBOOKS, 'utf8')) as Record<string, { sha256: string; playbook: Playbook }>;
    const hit = all[path.basename(file)];
    return hit && hit.sha256 === sha256(text) ? hit.playbook : null;
  } catch {
    return null;
  }
}

export async function loadPlaybook(nameOrPath?: string): Promise<LoadedPlaybook> {
  const file = resolvePlaybookPath(nameOrPath);
  if (!existsSync(file)) {
    throw new PgrevokeError(`playbook not found: ${file}`, {
      exitCode: ExitCode.USAGE,
      hint: `shipped playbooks: ${shippedPlaybooks().join(', ')}; or pass a path to a YAML file`,
    });
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PgrevokeError(`could not read playbook ${file}: ${(err as Error).message}`, { exitCode: ExitCode.USAGE, cause: err });
  }
  const ready = compiled(file, text);
  if (ready) return { ...ready, file };
  const { parsePlaybook } = await import('./schema.js');
  return parsePlaybook(text, file);
}
