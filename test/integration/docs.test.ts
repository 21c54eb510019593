// The docs stay true to the CLI a user runs: every flag a command's --help shows is in that
// command's page under docs/ (the global flags in docs/global-options.md), every --help ends with
// two or three examples that use only flags the command has, and every link in the README and the
// docs leads to a file that exists and, with a #fragment, to a heading in it.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOCS = path.join(ROOT, 'docs');
const README = path.join(ROOT, 'README.md');

/** The page a command's flags are documented in; `history` shares restore's. */
const pageOf = (command: string | null) =>
  path.join(DOCS, command === null ? 'global-options.md' : command === 'history' ? 'restore.md' : `${command}.md`);

/** The lines of one section of commander's help (`Options:`, `Commands:`) up to the blank line that ends it. */
function section(help: string, title: string): string[] {
  const lines = help.split('\n');
  const start = lines.indexOf(`${title}:`);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Every flag in the Options section: `-y`, `--yes`; --help is every command's and needs no page. */
function flagsOf(help: string): string[] {
  const flags: string[] = [];
  for (const line of section(help, 'Options')) {
    const m = /^ {2}(?:(-\w), )?(--[\w-]+)/.exec(line);
    if (!m) continue; // a wrapped description
    if (m[1]) flags.push(m[1]);
    if (m[2] !== '--help') flags.push(m[2]!);
  }
  return flags;
}

const mentions = (text: string, flag: string) => new RegExp(`(?<![\\w-])${flag.replace(/[-]/g, '\\-')}(?![\\w-])`).test(text);

/** `pgrevoke ARGS --help` from the built CLI. */
async function help(args: string[]): Promise<string> {
  const r = await runCli([...args, '--help']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/** The markdown outside fenced code blocks: links and headings there are text, not links. */
const prose = (md: string) => md.replace(/^```[\s\S]*?^```/gm, '');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(md).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

const docPages = () => readdirSync(DOCS).filter((f) => f.endsWith('.md'));

describe('docs', () => {
  let commands: string[] = [];
  let globalFlags: string[] = [];
  let globalHelp = '';
  /** Each command's --help, as the built CLI prints it. */
  const helps = new Map<string, string>();

  beforeAll(async () => {
    globalHelp = await help([]);
    globalFlags = flagsOf(globalHelp);
    commands = section(globalHelp, 'Commands')
      .map((l) => /^ {2}([a-z][\w-]*)/.exec(l)?.[1])
      .filter((c): c is string => !!c && c !== 'help');
    for (const [c, text] of await Promise.all(commands.map(async (c) => [c, await help([c])] as const))) helps.set(c, text);
  });

  it('lists the commands it checks', () => {
    expect(commands).toEqual(
      expect.arrayContaining(['inspect', 'cutoff', 'verify', 'restore', 'history', 'guard', 'sessions', 'kill', 'demo']),
    );
  });

  it('documents every global flag in docs/global-options.md', () => {
    const page = readFileSync(pageOf(null), 'utf8');
    expect(globalFlags.length).toBeGreaterThan(10);
    expect(globalFlags.filter((f) => !mentions(page, f))).toEqual([]);
  });

  it("documents every flag of every command's --help in that command's page", () => {
    const missing: string[] = [];
    for (const command of commands) {
      const file = pageOf(command);
      expect(existsSync(file), `${command}: ${path.relative(ROOT, file)}`).toBe(true);
      const page = readFileSync(file, 'utf8');
      for (const f of flagsOf(helps.get(command)!)) if (!mentions(page, f)) missing.push(`${path.relative(ROOT, file)}: ${command} ${f}`);
    }
    expect(missing).toEqual([]);
  });

  it('ends every --help with two or three examples, each using only flags its command has', () => {
    for (const command of [null, ...commands]) {
      const name = command ?? 'pgrevoke';
      const text = command === null ? globalHelp : helps.get(command)!;
      expect(text, `${name}: no Examples:`).toContain('\nExamples:\n');
      const tail = text
        .slice(text.lastIndexOf('\nExamples:\n') + '\nExamples:\n'.length)
        .trimEnd()
        .split('\n');
      expect(
        tail.every((l) => /^ {2}[#$] \S/.test(l)),
        `${name}: only examples after Examples:\n${tail.join('\n')}`,
      ).toBe(true);
      const lines = tail.filter((l) => l.startsWith('  $ '));
      expect(lines.length, name).toBeGreaterThanOrEqual(2);
      expect(lines.length, name).toBeLessThanOrEqual(3);
      for (const line of lines) {
        // what follows `pgrevoke CMD` (sudo's -u before it is not ours)
        const m = /\bpgrevoke (\S+)(.*)$/.exec(line);
        expect(m && helps.has(m[1]!), line).toBe(true);
        if (command !== null) expect(m![1], line).toBe(command);
        const own = flagsOf(helps.get(m![1]!)!);
        const used = [...m![2]!.matchAll(/(?<=\s)(--?[A-Za-z][\w-]*)/g)].map((u) => u[1]!);
        expect(
          used.filter((f) => !own.includes(f) && !globalFlags.includes(f)),
          line,
        ).toEqual([]);
      }
    }
  });

  it('keeps the two fresh-clone commands in the README', () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toContain('npm ci && npx pgrevoke demo');
    expect(readme).toContain('npm ci && npm test');
  });

  it('links every docs page from the README, and every link leads to a file and a heading that exist', () => {
    const readme = readFileSync(README, 'utf8');
    const linked = new Set([...prose(readme).matchAll(/\]\(docs\/([^)#]+\.md)/g)].map((m) => m[1]!));
    expect(docPages().filter((p) => !linked.has(p))).toEqual([]);
    const broken: string[] = [];
    for (const file of [README, ...docPages().map((p) => path.join(DOCS, p))]) {
      for (const m of prose(readFileSync(file, 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
        const [rel, fragment] = target.split('#') as [string, string | undefined];
        const dest = rel ? path.resolve(path.dirname(file), rel) : file;
        const where = `${path.relative(ROOT, file)}: ${target}`;
        if (!existsSync(dest)) broken.push(`${where} (no file)`);
        else if (fragment && dest.endsWith('.md') && !anchors(readFileSync(dest, 'utf8')).has(fragment))
          broken.push(`${where} (no heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});
