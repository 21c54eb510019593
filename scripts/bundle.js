// Build step: what ships, dist/bundle/, built from src/ by esbuild after tsc (which stays for the type
// check and for compile-playbooks.js). Code-split ESM: each command's dynamic import() stays a lazy
// chunk, so `pgrevoke --version` parses only cli.ts's part and cutoff loads only its own; one parse of
// a few files instead of Node resolving and reading some 150 modules (BENCHMARKS.md, "start-up attempts").
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'bundle');

// chunk names carry content hashes: an earlier build's chunks would pile up beside the new ones
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: ['src/cli.ts'],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // pg loads it only for pg.native, which pgrevoke never uses
  external: ['pg-native'],
  // pg by its CommonJS entry, not its ESM wrapper: esbuild runs a CommonJS module where it is first
  // imported, after the navigator preset (src/pg/driver.ts), while an ESM module may land in a shared
  // chunk that runs before the importing chunk's own code, preset included, and undici loads again
  alias: { pg: 'pg/lib/index.js' },
  // the CommonJS dependencies call require(); an ESM chunk has none, and esbuild's stand-in throws
  // `Dynamic require of "events" is not supported` without one. The import's name cannot clash with ours.
  banner: {
    js: "import { createRequire as __pgrevokeCreateRequire } from 'node:module'; const require = __pgrevokeCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
