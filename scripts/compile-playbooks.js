// Build step: validate the shipped playbooks and write dist/playbooks.json, so that loading one at
// run time needs neither the YAML parser nor the schema library (they cost ~130 ms of start-up on
// cutoff's path to containment). Each entry carries the hash of the YAML it came from.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parsePlaybook } from '../dist/playbook/schema.js';
import { sha256 } from '../dist/playbook/load.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = path.join(root, 'playbooks');
const out = {};
for (const name of readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort()) {
  const text = readFileSync(path.join(dir, name), 'utf8');
  const { file: _file, ...playbook } = parsePlaybook(text, path.join(dir, name));
  out[name] = { sha256: sha256(text), playbook };
}
writeFileSync(path.join(root, 'dist', 'playbooks.json'), JSON.stringify(out, null, 2) + '\n');
