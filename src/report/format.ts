// Small shared pieces of human output: tables, truncation, durations.
import Table from 'cli-table3';
import type { ChalkInstance } from 'chalk';
import type { Finding, Severity } from '../checks/types.js';

export function table(head: string[], rows: (string | number | null | undefined)[][], c: ChalkInstance): string {
  const t = new Table({
    head: head.map((h) => c.bold(h)),
    style: { head: [], border: [] },
    wordWrap: false,
  });
  for (const r of rows) t.push(r.map((v) => (v === null || v === undefined ? '' : String(v))));
  return t.toString();
}

/** One line, at most n characters: queries in tables. JSON keeps them whole. */
export function truncate(text: string | null | undefined, n = 60): string {
  if (!text) return '';
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}\u2026` : flat;
}

export function seconds(s: number | null | undefined): string {
  if (s === null || s === undefined) return '';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

export function severityLabel(s: Severity, c: ChalkInstance): string {
  const label = s.toUpperCase().padEnd(8);
  switch (s) {
    case 'critical':
      return c.red.bold(label);
    case 'high':
      return c.red(label);
    case 'medium':
      return c.yellow(label);
    case 'low':
      return c.cyan(label);
    default:
      return c.dim(label);
  }
}

export function renderFindings(findings: Finding[], c: ChalkInstance): string[] {
  if (findings.length === 0) return [c.green('No findings.')];
  const out: string[] = [];
  const indent = (text: string) => text.replace(/\n/g, '\n         ');
  for (const f of findings) {
    out.push(`${severityLabel(f.severity, c)} ${c.bold(f.id)}  ${f.title}`);
    out.push(`         ${indent(f.detail)}`);
    out.push(`         ${c.dim('fix:')} ${indent(f.remediation)}`);
  }
  return out;
}

/** The heading of one node's section in text output: `== name (primary) ==`. */
export function nodeHeading(n: { node: string; role: string | null }, c: ChalkInstance): string {
  return c.bold(`== ${n.node}${n.role ? ` (${n.role})` : ''} ==`);
}
