// The structure check in `npm test`: no import cycle in src/, and no function in src/ whose body
// spans more than 100 lines. It reads the code with the TypeScript compiler (a devDependency
// already), so module names resolve exactly as tsc resolves them ('./x.js' finds x.ts).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

export const MAX_FUNCTION_LINES = 100;

/** File -> the files of the tree it imports (sorted, absolute paths). */
export type ImportGraph = Map<string, string[]>;

export interface LongFunction {
  file: string;
  /** 1-based line where the function starts. */
  line: number;
  name: string;
  /** Lines the body spans, its opening and closing lines included. */
  lines: number;
}

/** The compiler options of a tsconfig.json, as tsc would use them. */
export function compilerOptions(tsconfig: string): ts.CompilerOptions {
  const read = ts.readConfigFile(tsconfig, (f) => ts.sys.readFile(f));
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  return ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(tsconfig)).options;
}

/** Every .ts file under `dir` (declaration files are not code), sorted. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f))
    .sort();
}

/**
 * The import graph over `files`. preProcessFile lists static imports, `import type`, re-exports and
 * dynamic import(): all count, since a type import is still a file a reader must follow. Imports
 * that resolve outside `files` (packages, node:) are not edges.
 */
export function importGraph(files: readonly string[], options: ts.CompilerOptions): ImportGraph {
  const inTree = new Set(files.map((f) => path.resolve(f)));
  const graph: ImportGraph = new Map();
  for (const file of inTree) {
    const text = readFileSync(file, 'utf8');
    const mode = ts.getImpliedNodeFormatForFile(file, undefined, ts.sys, options);
    const targets = new Set<string>();
    for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
      const resolved = ts.resolveModuleName(fileName, file, options, ts.sys, undefined, undefined, mode).resolvedModule;
      const target = resolved && path.resolve(resolved.resolvedFileName);
      if (target && inTree.has(target)) targets.add(target);
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** Strongly connected components (Tarjan) that hold a cycle: two files or more, or a file importing itself. */
export function cyclicComponents(graph: ImportGraph): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  // recursion depth is bounded by the length of the longest import chain, a few dozen files
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/**
 * A shortest cycle through the component's first file (breadth-first within the component), as the
 * chain a reader follows: [a, b, c, a]. A component can hold more files than one cycle visits.
 */
export function cycleChain(graph: ImportGraph, component: readonly string[]): string[] {
  const members = new Set(component);
  const start = component[0]!;
  const cameFrom = new Map<string, string>([[start, start]]);
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const chain = [start];
        for (let at = v; at !== start; at = cameFrom.get(at)!) chain.unshift(at);
        return [start, ...chain];
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

/** What a reader would call the function: its own name, or the name it is assigned to or passed with. */
function functionName(node: ts.FunctionLikeDeclaration, sf: ts.SourceFile): string {
  const owner = (n: ts.Node): string => (ts.isClassLike(n.parent) && n.parent.name ? `${n.parent.name.text}.` : '');
  if (ts.isConstructorDeclaration(node)) return `${owner(node)}constructor`;
  if (node.name) return `${owner(node)}${node.name.getText(sf)}`;
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))
    return `${owner(parent)}${parent.name.getText(sf)}`;
  if (ts.isBinaryExpression(parent)) return parent.left.getText(sf);
  if (ts.isCallExpression(parent) || ts.isNewExpression(parent)) return `(callback of ${parent.expression.getText(sf)})`;
  return '(anonymous)';
}

/**
 * Every function, method, constructor, accessor, arrow function and function expression with a body,
 * and the lines its body spans (the lines of its opening and closing brace included), in source order.
 */
export function functionSpans(file: string, text: string): LongFunction[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const lineOf = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line + 1;
  const out: LongFunction[] = [];
  const walk = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const fn = node as ts.FunctionLikeDeclaration;
      const body = fn.body!;
      out.push({
        file,
        line: lineOf(fn.getStart(sf)),
        name: functionName(fn, sf),
        lines: lineOf(body.getEnd()) - lineOf(body.getStart(sf)) + 1,
      });
    }
    ts.forEachChild(node, walk);
  };
  walk(sf);
  return out;
}

export interface StructureResult {
  problems: string[];
  summary: string;
}

/** The whole check over `root`/src with `root`/tsconfig.json; paths in the lines are relative to root. */
export function checkStructure(root: string, limit = MAX_FUNCTION_LINES): StructureResult {
  const files = sourceFiles(path.join(root, 'src'));
  const graph = importGraph(files, compilerOptions(path.join(root, 'tsconfig.json')));
  const rel = (f: string) => path.relative(root, f);
  const problems: string[] = [];
  for (const component of cyclicComponents(graph)) {
    const chain = cycleChain(graph, component);
    const others = component.filter((f) => !chain.includes(f));
    problems.push(
      `import cycle (${component.length} files): ${chain.map(rel).join(' -> ')}` +
        (others.length ? `; also in it: ${others.map(rel).join(', ')}` : ''),
    );
  }
  const spans = files.flatMap((f) => functionSpans(rel(f), readFileSync(f, 'utf8')));
  for (const s of spans) if (s.lines > limit) problems.push(`${s.file}:${s.line} ${s.name}: ${s.lines} lines (limit ${limit})`);
  const edges = [...graph.values()].reduce((n, targets) => n + targets.length, 0);
  const longest = spans.reduce<LongFunction | undefined>((a, s) => (a && a.lines >= s.lines ? a : s), undefined);
  const summary =
    `structure: ${files.length} files, ${edges} imports, no cycle; longest function ` +
    (longest ? `${longest.file}:${longest.line} ${longest.name} (${longest.lines} lines)` : 'none');
  return { problems, summary };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { problems, summary } = checkStructure(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
  for (const line of problems) console.error(line);
  if (problems.length) process.exitCode = 1;
  else console.log(summary);
}
