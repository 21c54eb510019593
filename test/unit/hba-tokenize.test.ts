// The pg_hba.conf tokenizer against hba.c's rules, and the quoted-token cases of issue 12 evaluated
// from the raw file (quoted) and from the view alone (undecidable, never a guess).
import { describe, expect, it } from 'vitest';
import { tokenizeHba, type HbaFileSet } from '../../src/hba/tokenize.js';
import { mergeWithView, rulesFromLines } from '../../src/hba/raw-rules.js';
import { evaluateHba, rejectedEverywhere, type HbaEvalInput } from '../../src/hba/evaluate.js';
import type { HbaRule } from '../../src/hba/types.js';

const MAIN = '/etc/pg/pg_hba.conf';

function set(files: Record<string, string | null>, dirs: Record<string, string[] | null> = {}): HbaFileSet {
  return { files: new Map(Object.entries(files)), dirs: new Map(Object.entries(dirs)) };
}

/** Parse to completion from an in-memory tree. */
function parse(files: Record<string, string | null>, dirs: Record<string, string[] | null> = {}, includes = true) {
  const r = tokenizeHba(MAIN, set(files, dirs), { includes });
  const missing = r.needFiles.filter((f) => !(f in files));
  expect(missing).toEqual([]);
  return r.lines;
}

const fieldTexts = (files: Record<string, string>) =>
  parse(files).map((l) => l.fields.map((f) => f.map((t) => (t.quoted ? `"${t.text}"` : t.text))));

/** The file's rules (from the raw tokens), as the evaluator sees them. */
const fileRules = (text: string, extra: Record<string, string> = {}) => rulesFromLines(parse({ [MAIN]: text, ...extra }));
/** The same rules as pg_hba_file_rules shows them: no quoting known. */
const viewRules = (text: string): HbaRule[] => fileRules(text).map(({ quoted: _q, ...r }) => ({ ...r, fileName: null }));

function evalInput(rules: HbaRule[], over: Partial<HbaEvalInput> = {}): HbaEvalInput {
  return { rules, role: 'alice', memberOf: ['staff'], replication: false, databases: ['postgres'], addresses: [], ...over };
}
const from127 = (res: ReturnType<typeof evaluateHba>, database = 'postgres', replication = false) =>
  res.decisions.find(
    (d) =>
      d.scenario.address === '127.0.0.1' && !d.scenario.ssl && d.scenario.database === database && d.scenario.replication === replication,
  )!;

describe('tokenizeHba', () => {
  it('keeps quotes, doubled quotes, commas, comments and the quoted flag of the first character only', () => {
    const lines = fieldTexts({
      [MAIN]: [
        '# comment',
        '',
        'host "all",x "+staff" 0.0.0.0/0 trust # trailing',
        'local "a""b", c al"l" md5',
        'host all "with space",@"list" ::1/128 trust',
        'host "#notcomment" all all trust',
      ].join('\n'),
      '/etc/pg/list': 'bob\n"carol"\n',
    });
    expect(lines).toEqual([
      [['host'], ['"all"', 'x'], ['"+staff"'], ['0.0.0.0/0'], ['trust']],
      [['local'], ['"a"b"', 'c'], ['all'], ['md5']],
      [['host'], ['all'], ['"with space"', 'bob', '"carol"'], ['::1/128'], ['trust']],
      [['host'], ['"#notcomment"'], ['all'], ['all'], ['trust']],
    ]);
  });

  it('numbers lines as the server does: blank and comment lines count, a continued record takes its first line', () => {
    const lines = parse({ [MAIN]: '# c\n\nhost all \\\n  alice \\\n  127.0.0.1/32 trust\nlocal all all peer\n' });
    expect(lines.map((l) => [l.lineNumber, l.fields.length])).toEqual([
      [3, 5],
      [6, 4],
    ]);
  });

  it('@file names are relative to the including file; a quoted "@x" is a name', () => {
    const lines = parse({ [MAIN]: 'host all @sub/users,"@lit" all trust', '/etc/pg/sub/users': 'a @more', '/etc/pg/sub/more': 'b' });
    expect(lines[0]!.fields[2]!.map((t) => t.text)).toEqual(['a', 'b', '@lit']);
  });

  it('16+: include, include_if_exists and include_dir (.conf files, sorted), each line keeping its own file', () => {
    const lines = parse(
      {
        [MAIN]: 'include a.conf\ninclude_if_exists missing.conf\ninclude_dir conf.d\nlocal all all trust',
        '/etc/pg/a.conf': '\nhost all a 10.0.0.0/8 trust',
        '/etc/pg/missing.conf': null,
        '/etc/pg/conf.d/20.conf': 'host all b all trust',
        '/etc/pg/conf.d/10.conf': 'host all c all trust',
      },
      { '/etc/pg/conf.d': ['20.conf', 'README', '10.conf', '.hidden.conf'] },
    );
    expect(lines.map((l) => `${l.fileName}:${l.lineNumber}:${l.fields[2]![0]!.text}`)).toEqual([
      '/etc/pg/a.conf:2:a',
      '/etc/pg/conf.d/10.conf:1:c',
      '/etc/pg/conf.d/20.conf:1:b',
      `${MAIN}:4:all`,
    ]);
    expect(rulesFromLines(lines).map((r) => r.ruleNumber)).toEqual([1, 2, 3, 4]);
  });

  it('before 16 an include line is an ordinary (invalid) line; a missing include is an error line', () => {
    expect(parse({ [MAIN]: 'include a.conf' }, {}, false)[0]!.fields.map((f) => f[0]!.text)).toEqual(['include', 'a.conf']);
    expect(parse({ [MAIN]: 'include a.conf', '/etc/pg/a.conf': null })[0]!.error).toMatch(/could not open file/);
  });

  it('asks for what it has not been given', () => {
    const r = tokenizeHba(MAIN, set({ [MAIN]: 'include_dir d\nhost all @u all trust' }), { includes: true });
    expect(r.needDirs).toEqual(['/etc/pg/d']);
    expect(r.needFiles).toEqual(['/etc/pg/u']);
  });
});

describe('rules from raw tokens and the view', () => {
  it('reads address + netmask, CIDR and local ident as the view shows them, and agrees with it', () => {
    const text = 'host all all 10.0.0.0 255.0.0.0 md5\nhost all all 2001:db8::/32 trust\nlocal all all ident';
    const [a, b, c] = fileRules(text);
    expect([a!.address, a!.netmask, b!.address, b!.netmask, c!.authMethod]).toEqual([
      '10.0.0.0',
      '255.0.0.0',
      '2001:db8::',
      'ffff:ffff::',
      'peer',
    ]);
    const merged = mergeWithView(viewRules(text), fileRules(text), MAIN);
    expect(merged.mismatches).toEqual([]);
    expect(merged.rules.every((r) => r.quoted)).toBe(true);
  });

  it('names the lines where the file and the view disagree, and keeps no quoting there', () => {
    const view = viewRules('host all all 0.0.0.0/0 trust\nhost all bob 0.0.0.0/0 reject');
    const merged = mergeWithView(view, fileRules('host all all 0.0.0.0/0 md5'), MAIN);
    expect(merged.mismatches.map((m) => [m.line, m.detail])).toEqual([
      [1, 'method md5 here, trust in the view'],
      [2, 'in the view, but no such rule in the file as read here'],
    ]);
    expect(merged.rules[0]!.quoted).toBeUndefined();
  });
});

describe('issue 12: quoted keywords (from 127.0.0.1 to postgres)', () => {
  it('"+staff" is the role named +staff: alice passes to the trust line, and is not "rejected everywhere"', () => {
    const text = 'host all "+staff" 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 trust';
    const d = from127(evaluateHba(evalInput(fileRules(text))));
    expect([d.outcome, d.line]).toEqual(['allow', 2]);
    expect(rejectedEverywhere(evalInput(fileRules(text))).rejected).toBe(false);
    const viewOnly = from127(evaluateHba(evalInput(viewRules(text))));
    expect(viewOnly.outcome).toBe('undecidable');
    expect(viewOnly.reason).toMatch(/line 1 has \+staff in its user field.*without their quotes/);
    expect(rejectedEverywhere(evalInput(viewRules(text))).rejected).toBe(false);
  });

  it('"all" in the user column is the role named all', () => {
    const text = 'host all "all" 0.0.0.0/0 reject\nhost all all 0.0.0.0/0 trust';
    expect(from127(evaluateHba(evalInput(fileRules(text)))).line).toBe(2);
    expect(rejectedEverywhere(evalInput(fileRules(text))).rejected).toBe(false);
  });

  it('"all" in the database column is the database named all: no match for postgres', () => {
    const d = from127(evaluateHba(evalInput(fileRules('host "all" alice 127.0.0.0/8 trust'))));
    expect(d.outcome).toBe('no_match');
  });

  it('"replication" is the database named replication, never a physical replication connection', () => {
    const rs = fileRules('host "replication" dave 127.0.0.0/8 trust');
    const res = evaluateHba(evalInput(rs, { role: 'dave', memberOf: [], databases: ['replication'], replication: true }));
    expect(from127(res, 'replication', false).outcome).toBe('allow');
    expect(from127(res, 'replication', true).outcome).toBe('no_match');
  });

  it('"sameuser" is the database named sameuser: not database alice', () => {
    const d = from127(evaluateHba(evalInput(fileRules('host "sameuser" alice 127.0.0.1/32 trust'), { databases: ['alice'] })), 'alice');
    expect(d.outcome).toBe('no_match');
  });

  it('unquoted keywords still are keywords', () => {
    const res = evaluateHba(evalInput(fileRules('host sameuser +staff 127.0.0.1/32 trust'), { databases: ['alice'] }));
    expect(from127(res, 'alice').outcome).toBe('allow');
  });

  it('from the view alone, a keyword is decided only where both readings agree', () => {
    // role bob is neither all nor in staff: both readings of line 1 say no, so line 2 decides
    const res = evaluateHba(
      evalInput(viewRules('host all +staff 0.0.0.0/0 reject\nhost postgres bob 0.0.0.0/0 trust'), { role: 'bob', memberOf: [] }),
    );
    expect(from127(res).outcome).toBe('allow');
  });
});

describe('every connection a role can make', () => {
  it('a range no session came from is sampled (network + 1), IPv4 and IPv6, with the deciding line and connection type', () => {
    const res = evaluateHba(evalInput(fileRules('host all alice 10.0.0.0/8 trust\nhostssl all alice 2001:db8:1::/48 md5')));
    const v4 = res.decisions.find((d) => d.scenario.address === '10.0.0.1' && !d.scenario.ssl)!;
    expect(v4).toMatchObject({ outcome: 'allow', line: 1, ruleNumber: 1, user: 'alice', connectionType: 'hostnossl', fileName: MAIN });
    expect(v4.scenario.addressLabel).toMatch(/inside 10\.0\.0\.0\/8, the range of line 1/);
    const v6 = res.decisions.find((d) => d.scenario.address === '2001:db8:1::1' && d.scenario.ssl)!;
    expect(v6).toMatchObject({ outcome: 'allow', line: 2, connectionType: 'hostssl' });
    // a /32 is sampled at its own address
    const one = evaluateHba(evalInput(fileRules('host all alice 192.0.2.5/32 trust')));
    expect(one.decisions.some((d) => d.scenario.address === '192.0.2.5' && d.outcome === 'allow')).toBe(true);
  });
});
