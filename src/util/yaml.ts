// YAML data validated by a zod schema, with source ranges kept so that an invalid file is a usage
// error (exit 2) naming the file, the line and the field: `invalid fleet f.yaml:7: clusters[0].nodes[1].dsn: ...`.
// Shared by the playbook (src/playbook/schema.ts) and the fleet file (src/fleet/file.ts).

import { isMap, isNode, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ExitCode, PgrevokeError } from '../errors.js';

export type YamlPath = readonly PropertyKey[];

/** A problem found after the schema accepted the data (duplicates, unresolvable DSNs): where and what. */
export interface YamlProblem {
  path: YamlPath;
  message: string;
  hint?: string;
}

export interface YamlSchemaOptions<T> {
  /** What the file is, for the message: `invalid <what> <file>:<line>: ...`. */
  what: string;
  /** The hint of every error from this file kind. */
  hint: string;
  /** Checks on the parsed data beyond the schema; the first problem is reported with its line. */
  check?: (data: T) => YamlProblem | null;
}

function lineOf(lc: LineCounter, offset: number): number {
  return lc.linePos(offset).line;
}

/** The YAML node for a path: the deepest one that exists (a missing key points at its map). */
function nodeFor(doc: Document, issuePath: YamlPath, unknownKey?: string): Node | null {
  let p = [...issuePath].map((k) => (typeof k === 'symbol' ? String(k) : k)) as (string | number)[];
  for (;;) {
    const node = p.length === 0 ? doc.contents : doc.getIn(p, true);
    if (isNode(node)) {
      if (unknownKey !== undefined && isMap(node)) {
        const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === unknownKey);
        if (pair && isNode(pair.key)) return pair.key;
      }
      return node;
    }
    if (p.length === 0) return null;
    p = p.slice(0, -1);
  }
}

/** `steps[2].action`, `clusters[0].nodes[1].dsn`; `(top level)` for the document itself. */
export function fieldName(issuePath: YamlPath, key?: string): string {
  const parts = [...issuePath.map((k) => (typeof k === 'number' ? `[${k}]` : `.${String(k)}`)), ...(key ? [`.${key}`] : [])];
  const text = parts.join('').replace(/^\./, '');
  return text || '(top level)';
}

function invalid(what: string, file: string, line: number | null, field: string, message: string, hint: string): PgrevokeError {
  return new PgrevokeError(`invalid ${what} ${file}${line ? `:${line}` : ''}: ${field}: ${message}`, { exitCode: ExitCode.USAGE, hint });
}

/** Parse YAML text and validate it with `schema` (then `check`); errors name file, line and field. */
export function parseYamlWith<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  opts: YamlSchemaOptions<z.output<S>>,
): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, keepSourceTokens: false, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line ?? lineOf(lineCounter, e.pos[0]);
    throw invalid(opts.what, file, line, 'YAML', e.message.split('\n')[0]!, opts.hint);
  }
  const at = (path: YamlPath, unknownKey?: string): number | null => {
    const node = nodeFor(doc, path, unknownKey);
    return node?.range ? lineOf(lineCounter, node.range[0]) : null;
  };
  const result = schema.safeParse(doc.toJS());
  if (!result.success) {
    // an unknown key first: beside a missing required one it is most likely the misspelling of it
    const issues = result.error.issues;
    const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
    const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown field "${unknownKey}"`
        : issue.code === 'invalid_type' && / received undefined$/.test(issue.message)
          ? `missing (expected ${issue.expected})`
          : issue.message;
    throw invalid(opts.what, file, at(issue.path, unknownKey), fieldName(issue.path, unknownKey), message, opts.hint);
  }
  const problem = opts.check?.(result.data);
  if (problem) throw invalid(opts.what, file, at(problem.path), fieldName(problem.path), problem.message, problem.hint ?? opts.hint);
  return result.data;
}
