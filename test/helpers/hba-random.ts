// Random pg_hba.conf files from fixed seeds, for the differential test (test/integration/hba-differential.test.ts).
// Pure: the same seed always gives the same file, byte for byte. Every line it writes is valid on
// PostgreSQL 14..18 with ssl = on (no regex tokens, no include directives, no host names), so the
// server loads the file and its pg_hba_file_rules has no error row.

/** A role of the test world. `groups` are granted to it directly. */
export interface WorldRole {
  name: string;
  password: string;
  login: boolean;
  superuser?: boolean;
  replication?: boolean;
  inherit?: boolean;
  groups: string[];
}

/**
 * The roles and databases every generated file is written against: staff <- ops (nested), alice
 * direct member of staff, bob a member through ops, carol a NOINHERIT member, dave REPLICATION, eve a
 * superuser without REPLICATION, mallory in no group. A database is literally named "replication",
 * one is named after alice (sameuser) and one after the group staff (samerole).
 */
export const WORLD: { roles: WorldRole[]; databases: string[]; targets: string[] } = {
  roles: [
    { name: 'staff', password: '', login: false, groups: [] },
    { name: 'ops', password: '', login: false, groups: ['staff'] },
    { name: 'alice', password: 'pw-alice', login: true, groups: ['staff'] },
    { name: 'bob', password: 'pw-bob', login: true, groups: ['ops'] },
    { name: 'carol', password: 'pw-carol', login: true, inherit: false, groups: ['staff'] },
    { name: 'dave', password: 'pw-dave', login: true, replication: true, groups: [] },
    { name: 'eve', password: 'pw-eve', login: true, superuser: true, groups: ['ops'] },
    { name: 'mallory', password: 'pw-mallory', login: true, groups: [] },
  ],
  databases: ['app', 'replication', 'alice', 'staff'],
  /** Roles whose connections are inspected and replayed, one per file in turn. */
  targets: ['alice', 'bob', 'carol', 'dave', 'eve'],
};

/** The first line of every file: the harness (and pgrevoke inspect) log in as postgres over 127.0.0.1. */
export const HARNESS_LINE = 'host all postgres 127.0.0.1/32 trust';

/** Names of the @file lists a generated file may refer to (relative to the data directory, where pg_hba.conf is). */
export const LIST_FILES = { databases: 'diff-dbs.list', users: 'diff-users.list' } as const;

export type LineType = 'local' | 'host' | 'hostssl' | 'hostnossl';
export type Method = 'trust' | 'reject' | 'scram-sha-256';

export interface GeneratedLine {
  /** 1-based line number in pg_hba.conf. */
  number: number;
  text: string;
  type: LineType;
  method: Method;
  /**
   * What in this line a client-side evaluator can get wrong, e.g. `quoted "all" (user)`,
   * `quoted "+staff"`, `@file with quoted "sameuser"`, `address+mask`, `IPv6`, `samerole`.
   */
  features: string[];
}

export interface GeneratedHba {
  seed: number;
  /** The role inspected and replayed for this file. */
  role: string;
  /** pg_hba.conf text (HARNESS_LINE first). */
  text: string;
  lines: GeneratedLine[];
  /** @file lists, name -> content; written next to pg_hba.conf. */
  files: Record<string, string>;
}

/** mulberry32: small, fast, and the same on every platform. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Tok {
  text: string;
  features: string[];
}

const KEYWORDS = new Set(['all', 'sameuser', 'samerole', 'samegroup', 'replication']);

/** A token written bare or in double quotes; quoting a keyword or a +name makes it a plain name for PostgreSQL. */
function tok(name: string, quoted: boolean, column: 'database' | 'user'): Tok {
  const text = quoted ? `"${name}"` : name;
  const features: string[] = [];
  if (quoted && (KEYWORDS.has(name) || name.startsWith('+'))) features.push(`quoted "${name}" (${column})`);
  else if (!quoted && KEYWORDS.has(name)) features.push(`${name} (${column})`);
  else if (!quoted && name.startsWith('+')) features.push(`+group (${column})`);
  return { text, features };
}

/** Pick from weighted choices. */
function weighted<T>(rnd: () => number, choices: [number, T][]): T {
  const total = choices.reduce((s, [w]) => s + w, 0);
  let x = rnd() * total;
  for (const [w, v] of choices) {
    if ((x -= w) < 0) return v;
  }
  return choices[choices.length - 1]![1];
}

function databaseToken(rnd: () => number): Tok {
  return weighted<() => Tok>(rnd, [
    [6, () => tok('all', false, 'database')],
    [3, () => tok('all', true, 'database')],
    [2, () => tok('sameuser', false, 'database')],
    [2, () => tok('sameuser', true, 'database')],
    [2, () => tok(rnd() < 0.7 ? 'samerole' : 'samegroup', false, 'database')],
    [1, () => tok('samerole', true, 'database')],
    [3, () => tok('replication', false, 'database')],
    [3, () => tok('replication', true, 'database')],
    [2, () => tok('postgres', false, 'database')],
    [2, () => tok('app', false, 'database')],
    [1, () => tok('alice', false, 'database')],
    [1, () => tok('staff', false, 'database')],
    [2, () => tok('template1', false, 'database')],
  ])();
}

function userToken(rnd: () => number, role: string): Tok {
  return weighted<() => Tok>(rnd, [
    [5, () => tok('all', false, 'user')],
    [3, () => tok('all', true, 'user')],
    [6, () => tok(role, rnd() < 0.2, 'user')],
    [2, () => tok(['alice', 'bob', 'carol', 'dave', 'eve', 'mallory'][Math.floor(rnd() * 6)]!, false, 'user')],
    [3, () => tok('+staff', false, 'user')],
    [2, () => tok('+ops', false, 'user')],
    [3, () => tok('+staff', true, 'user')],
    [1, () => tok('+ops', true, 'user')],
  ])();
}

/** A list column: one to three tokens, or (sometimes) an @file list of them. */
function column(rnd: () => number, one: () => Tok, listFile: string, files: Record<string, string>): Tok {
  if (!(listFile in files) && rnd() < 0.15) {
    const n = 1 + Math.floor(rnd() * 3);
    const toks = Array.from({ length: n }, one);
    files[listFile] = `# generated\n${toks.map((t) => t.text).join(rnd() < 0.5 ? ', ' : '\n')}\n`;
    return { text: `@${listFile}`, features: ['@file', ...toks.flatMap((t) => t.features.map((f) => `@file: ${f}`))] };
  }
  const n = weighted(rnd, [
    [7, 1],
    [2, 2],
    [1, 3],
  ]);
  const toks = Array.from({ length: n }, one);
  return { text: toks.map((t) => t.text).join(','), features: toks.flatMap((t) => t.features) };
}

/** An address column (never for local lines): loopback ranges IPv4 and IPv6, CIDR or address + mask, all; now and then one no client here has. */
function address(rnd: () => number): Tok {
  return weighted<Tok>(rnd, [
    [3, { text: 'all', features: ['address all'] }],
    [4, { text: '127.0.0.0/8', features: [] }],
    [3, { text: '127.0.0.1/32', features: [] }],
    [3, { text: '127.0.0.2/32', features: [] }],
    [2, { text: '127.0.0.2/31', features: [] }],
    [2, { text: '127.0.0.4/30', features: [] }],
    [2, { text: '0.0.0.0/0', features: [] }],
    [2, { text: '127.0.0.0 255.255.255.0', features: ['address+mask'] }],
    [2, { text: '127.0.0.3 255.255.255.255', features: ['address+mask'] }],
    [3, { text: '::1/128', features: ['IPv6'] }],
    [2, { text: '::/0', features: ['IPv6'] }],
    [1, { text: '::1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', features: ['IPv6', 'address+mask'] }],
    [1, { text: '10.0.0.0/8', features: ['non-loopback range'] }],
  ]);
}

/** One random pg_hba.conf for `seed`; the inspected role is WORLD.targets[seed % 5]. */
export function generateHba(seed: number): GeneratedHba {
  const rnd = prng(seed);
  const role = WORLD.targets[seed % WORLD.targets.length]!;
  const files: Record<string, string> = {};
  const lines: GeneratedLine[] = [{ number: 1, text: HARNESS_LINE, type: 'host', method: 'trust', features: ['harness'] }];
  // a third of the files start like a cutoff: reject lines for the role (or a group of it) on every
  // transport, some spelled so that PostgreSQL reads them differently than they look (quoted)
  if (rnd() < 0.35) {
    for (const [type, addr] of [
      ['local', null],
      ['host', rnd() < 0.5 ? '0.0.0.0/0' : '127.0.0.0 0.0.0.0'],
      ['host', rnd() < 0.5 ? '::/0' : '::1/0'],
    ] as const) {
      if (rnd() < 0.1) continue; // now and then a transport left out
      const db = weighted<Tok[]>(rnd, [
        [5, [tok('all', false, 'database'), tok('replication', false, 'database')]],
        [2, [tok('all', false, 'database')]],
        [2, [tok('all', true, 'database'), tok('replication', false, 'database')]],
        [1, [tok('all', false, 'database'), tok('replication', true, 'database')]],
      ]);
      const user = weighted<Tok>(rnd, [
        [5, tok(role, false, 'user')],
        [1, tok(role, true, 'user')],
        [2, tok('+staff', false, 'user')],
        [2, tok('+staff', true, 'user')],
        [1, tok('+ops', false, 'user')],
        [1, tok('all', true, 'user')],
      ]);
      const parts = [type, db.map((t) => t.text).join(','), user.text, ...(addr === null ? [] : [addr]), 'reject'];
      const features = ['containment block', ...db.flatMap((t) => t.features), ...user.features];
      if (addr?.includes(' ')) features.push('address+mask');
      if (addr?.includes(':')) features.push('IPv6');
      lines.push({ number: lines.length + 1, text: parts.join(' '), type, method: 'reject', features });
    }
  }
  const count = 3 + Math.floor(rnd() * 6);
  for (let i = 0; i < count; i++) {
    const type = weighted<LineType>(rnd, [
      [2, 'local'],
      [5, 'host'],
      [2, 'hostssl'],
      [2, 'hostnossl'],
    ]);
    const method = weighted<Method>(rnd, [
      [4, 'trust'],
      [3, 'reject'],
      [3, 'scram-sha-256'],
    ]);
    const db = column(rnd, () => databaseToken(rnd), LIST_FILES.databases, files);
    const user = column(rnd, () => userToken(rnd, role), LIST_FILES.users, files);
    const features = [...db.features, ...user.features];
    if (type !== 'local') features.push(type);
    const parts = [type, db.text, user.text];
    if (type !== 'local') {
      const a = address(rnd);
      parts.push(a.text);
      features.push(...a.features);
    }
    parts.push(method);
    lines.push({ number: lines.length + 1, text: parts.join(' '), type, method, features });
  }
  return { seed, role, text: lines.map((l) => `${l.text}\n`).join(''), lines, files };
}

/** The seed of file `index` (0-based): fixed, so a failure names a file anyone can regenerate. */
export function seedFor(index: number): number {
  return 0x5eed0000 + index;
}
