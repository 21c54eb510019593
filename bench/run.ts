// npm run bench [-- NAME...]: run the benchmarks and rewrite their sections of BENCHMARKS.md.
import { benchCutoff } from './cutoff.js';
import { benchFleet } from './fleet.js';
import { benchGuard } from './guard.js';
import { benchInspect } from './inspect.js';
import { benchLocks } from './locks.js';
import { benchServe } from './serve.js';
import { benchLockout } from './lockout.js';
import { writeSection } from './lib.js';

const BENCHES: Record<string, () => Promise<string>> = {
  inspect: benchInspect,
  cutoff: benchCutoff,
  guard: benchGuard,
  fleet: benchFleet,
  locks: benchLocks,
  serve: benchServe,
  lockout: benchLockout,
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
for (const name of wanted.length ? wanted : Object.keys(BENCHES)) {
  const bench = BENCHES[name];
  if (!bench) {
    console.error(`unknown benchmark ${name}; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exitCode = 2;
    continue;
  }
  console.error(`bench ${name}...`);
  const section = await bench();
  writeSection(name, section);
  console.log(section);
}
