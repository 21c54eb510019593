// pgrevoke's own files (package.json, playbooks/, dist/playbooks.json, bin/, the embedded PostgreSQL
// packages in node_modules) are found from the package root, never by a path relative to the calling
// file: tsc keeps src/'s tree in dist/, but the shipped bundle puts every chunk in one directory.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageJson {
  name: string;
  version: string;
}

let found: { root: string; pkg: PackageJson } | undefined;

function find(): { root: string; pkg: PackageJson } {
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
      if (pkg.name === 'pgrevoke') return { root: dir, pkg };
    }
    if (path.dirname(dir) === dir) throw new Error(`pgrevoke: no package.json of pgrevoke in ${start} or above`);
  }
}

/** The directory holding pgrevoke's package.json, walking up from this module: from src/ (tsx, vitest), dist/ or the bundle. */
export function packageRoot(): string {
  return (found ??= find()).root;
}

/** pgrevoke's package.json. */
export function packageJson(): PackageJson {
  return (found ??= find()).pkg;
}
