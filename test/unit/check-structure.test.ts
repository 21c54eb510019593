// The structure check (scripts/check-structure.ts) over small source trees written to a temp dir.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkStructure,
  compilerOptions,
  cyclicComponents,
  functionSpans,
  importGraph,
  sourceFiles,
} from '../../scripts/check-structure.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A project root with a NodeNext tsconfig.json (the code imports './x.js' for x.ts) and `files` under src/. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgrevoke-structure-'));
  roots.push(root);
  writeFileSync(
    path.join(root, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' } }),
  );
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, 'src', name)), { recursive: true });
    writeFileSync(path.join(root, 'src', name), text);
  }
  return root;
}

function graphOf(root: string) {
  const graph = importGraph(sourceFiles(path.join(root, 'src')), compilerOptions(path.join(root, 'tsconfig.json')));
  const rel = (f: string) => path.relative(path.join(root, 'src'), f);
  return { graph, rel };
}

/** A function whose body, from its `{` line to its `}` line, spans `lines` lines. */
function fnOf(name: string, lines: number): string {
  return `export function ${name}(): number {\n  let x = 0;\n${'  x++;\n'.repeat(lines - 4)}  return x;\n}\n`;
}

describe('check-structure: import cycles', () => {
  it('finds a cycle of two files', () => {
    const root = tree({
      'a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
    });
    expect(checkStructure(root).problems).toEqual(['import cycle (2 files): src/a.ts -> src/b.ts -> src/a.ts']);
  });

  it('finds a cycle of three files through an import type, a dynamic import() and a re-export', () => {
    const root = tree({
      'a.ts': "import type { B } from './b.js';\nexport const a: B = 1;\n",
      'b.ts': "export type B = number;\nexport async function load() {\n  return import('./c.js');\n}\n",
      'c.ts': "export { a } from './a.js';\n",
      // imports into the cycle without being part of it
      'nested/d.ts': "import { a } from '../c.js';\nimport { readFileSync } from 'node:fs';\nexport const d = [a, readFileSync];\n",
    });
    const { graph, rel } = graphOf(root);
    expect(cyclicComponents(graph).map((c) => c.map(rel))).toEqual([['a.ts', 'b.ts', 'c.ts']]);
    expect(checkStructure(root).problems).toEqual(['import cycle (3 files): src/a.ts -> src/b.ts -> src/c.ts -> src/a.ts']);
  });

  it('names every file of a component, also those the printed chain does not pass through', () => {
    const root = tree({
      'a.ts': "import './b.js';\nimport './c.js';\n",
      'b.ts': "import './a.js';\n",
      'c.ts': "import './a.js';\n",
    });
    expect(checkStructure(root).problems).toEqual(['import cycle (3 files): src/a.ts -> src/b.ts -> src/a.ts; also in it: src/c.ts']);
  });

  it('passes an acyclic tree and sums it up in one line', () => {
    const root = tree({
      'a.ts':
        "import { b } from './b.js';\nimport { c } from './c.js';\nimport { Command } from 'commander';\nexport const a = [b, c, Command];\n",
      'b.ts': "import { c } from './c.js';\nexport const b = c;\n",
      'c.ts': 'export const c = 1;\nexport function f() {\n  return c;\n}\n',
    });
    const { graph, rel } = graphOf(root);
    expect(cyclicComponents(graph)).toEqual([]);
    expect(graph.get(path.join(root, 'src', 'a.ts'))!.map(rel)).toEqual(['b.ts', 'c.ts']);
    expect(checkStructure(root)).toEqual({
      problems: [],
      summary: 'structure: 3 files, 3 imports, no cycle; longest function src/c.ts:2 f (3 lines)',
    });
  });
});

describe('check-structure: function length', () => {
  it('reports a function of 101 lines and passes one of 100', () => {
    const root = tree({ 'long.ts': fnOf('tooLong', 101) + fnOf('justRight', 100) });
    expect(checkStructure(root).problems).toEqual(['src/long.ts:1 tooLong: 101 lines (limit 100)']);
  });

  it('measures methods, constructors, arrow functions and function expressions, by the name a reader uses', () => {
    const text = [
      'export class Guard {',
      '  constructor() {',
      '    void 0;',
      '  }',
      '  tick() {',
      '    return 1;',
      '  }',
      '}',
      'export const run = () => {',
      '  return 2;',
      '};',
      'export const obj = { go: function () {',
      '  return 3;',
      '} };',
      '[1].map((x) => x + 1);',
    ].join('\n');
    expect(functionSpans('f.ts', text).map((s) => [s.line, s.name, s.lines])).toEqual([
      [2, 'Guard.constructor', 3],
      [5, 'Guard.tick', 3],
      [9, 'run', 3],
      [12, 'go', 3],
      [15, '(callback of [1].map)', 1],
    ]);
  });
});
