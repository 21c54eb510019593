import { describe, expect, it } from 'vitest';
import { quietFacts } from '../fixtures/facts.js';
import ipaddr from 'ipaddr.js';
import { describeRule, evaluateHba, isBlockingHbaError, type HbaEvalInput, type HbaEvalScenario } from '../../src/hba/evaluate.js';
import type { HbaDecision, HbaFacts, HbaRule } from '../../src/hba/types.js';
import { hbaAllowsWithoutPassword, hbaCheck, notInForceCaveat, sessionAddresses, withCaveat } from '../../src/checks/hba.js';
import type { RoleFacts } from '../../src/checks/types.js';

/** A rule as pg_hba_file_rules shows it: CIDR split into address + netmask, names unquoted (and known to be: the file was read). */
function rule(line: number, text: string, extra: Partial<HbaRule> = {}): HbaRule {
  const [type, db, user, ...rest] = text.trim().split(/\s+/);
  let address: string | null = null;
  let netmask: string | null = null;
  if (type !== 'local') {
    const a = rest.shift()!;
    if (a.includes('/')) {
      const [ip, len] = ipaddr.parseCIDR(a);
      address = ip.toString();
      netmask = (ip.kind() === 'ipv4' ? ipaddr.IPv4 : ipaddr.IPv6).subnetMaskFromPrefixLength(len).toString();
    } else if (ipaddr.isValid(a)) {
      address = a;
      netmask = rest.shift()!;
    } else address = a;
  }
  return {
    lineNumber: line,
    ruleNumber: null,
    fileName: null,
    type: type!,
    database: db!.split(','),
    userName: user!.split(','),
    address,
    netmask,
    authMethod: rest.shift()!,
    options: rest.length ? rest : null,
    error: null,
    quoted: { database: db!.split(',').map(() => false), userName: user!.split(',').map(() => false) },
    ...extra,
  };
}

function rules(...lines: string[]): HbaRule[] {
  return lines.map((l, i) => rule(i + 1, l));
}

function input(rs: HbaRule[], over: Partial<HbaEvalInput> = {}): HbaEvalInput {
  return { rules: rs, role: 'bob', memberOf: [], replication: false, databases: ['app'], addresses: [], ...over };
}

interface Want {
  transport?: 'local' | 'host';
  database?: string;
  address?: string | null;
  ssl?: boolean;
  replication?: boolean;
}

/** The one decision for a scenario (fails if there is not exactly one). */
function pick(decisions: HbaDecision[], want: Want): HbaDecision {
  const w = { transport: 'host', database: 'app', ssl: false, replication: false, ...want };
  const hits = decisions.filter((d) => {
    const s = d.scenario as HbaEvalScenario;
    return (
      s.transport === w.transport &&
      s.database === w.database &&
      s.ssl === w.ssl &&
      s.replication === w.replication &&
      (w.transport === 'local' ? s.address === null : s.address === w.address)
    );
  });
  expect(hits, JSON.stringify(want)).toHaveLength(1);
  return hits[0]!;
}

const REMOTE4 = '203.0.113.7';
const REMOTE6 = '2001:db8::7';

describe('evaluateHba: first match', () => {
  it('the first matching line decides; a later reject does not apply', () => {
    const { decisions } = evaluateHba(input(rules('host all all 0.0.0.0/0 scram-sha-256', 'host all bob 0.0.0.0/0 reject')));
    const d = pick(decisions, { address: REMOTE4 });
    expect(d).toMatchObject({ outcome: 'allow', line: 1, authMethod: 'scram-sha-256' });
  });

  it('no matching line is a rejection (no_match), with no line', () => {
    const { decisions } = evaluateHba(input(rules('host all alice 0.0.0.0/0 md5', 'local all alice peer')));
    for (const d of decisions) {
      expect(d.outcome).toBe('no_match');
      expect(d.line).toBeNull();
      expect(d.reason).toMatch(/no line matches/);
    }
    expect(decisions.length).toBeGreaterThan(0);
  });

  it('a reject line that matches first gives outcome reject', () => {
    const { decisions } = evaluateHba(input(rules('host all bob 0.0.0.0/0 reject', 'host all all 0.0.0.0/0 md5')));
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'reject', line: 1, authMethod: 'reject' });
    expect(pick(decisions, { address: REMOTE6 })).toMatchObject({ outcome: 'no_match' });
  });

  it('ignores error rows (the server never tries them)', () => {
    const rs = [
      rule(1, 'host all all 0.0.0.0/0 trust', { error: 'hostssl record cannot match because SSL is disabled' }),
      rule(2, 'host all all 0.0.0.0/0 md5'),
    ];
    const { decisions } = evaluateHba(input(rs));
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'allow', line: 2, authMethod: 'md5' });
  });

  it('orders by rule_number when present (PG16+ includes), and carries the file name', () => {
    const rs = [
      rule(1, 'host all all 0.0.0.0/0 md5', { ruleNumber: 2, fileName: '/etc/pg_hba.conf' }),
      rule(7, 'host all all 0.0.0.0/0 reject', { ruleNumber: 1, fileName: '/etc/hba.d/first.conf' }),
    ];
    const { decisions } = evaluateHba(input(rs));
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'reject', line: 7, fileName: '/etc/hba.d/first.conf' });
  });
});

describe('evaluateHba: connection types', () => {
  const rs = rules('local all all peer', 'host all all 127.0.0.1/32 md5');

  it('local lines match only local connections, host lines only TCP', () => {
    const { decisions } = evaluateHba(input(rs));
    expect(pick(decisions, { transport: 'local' })).toMatchObject({ outcome: 'allow', line: 1, authMethod: 'peer' });
    expect(pick(decisions, { address: '127.0.0.1' })).toMatchObject({ outcome: 'allow', line: 2 });
    expect(pick(decisions, { address: '127.0.0.1', ssl: true })).toMatchObject({ outcome: 'allow', line: 2 });
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'no_match' });
  });

  it('evaluates both SSL states: hostssl matches only SSL, hostnossl only non-SSL', () => {
    const { decisions } = evaluateHba(input(rules('hostssl all all 0.0.0.0/0 cert', 'hostnossl all all 0.0.0.0/0 reject')));
    expect(pick(decisions, { address: REMOTE4, ssl: true })).toMatchObject({ outcome: 'allow', line: 1, authMethod: 'cert' });
    expect(pick(decisions, { address: REMOTE4, ssl: false })).toMatchObject({ outcome: 'reject', line: 2 });
    expect(pick(decisions, { transport: 'local' })).toMatchObject({ outcome: 'no_match' });
  });

  it('with ssl off on the server, only non-SSL TCP connections are evaluated', () => {
    const { decisions } = evaluateHba(input(rules('host all all 0.0.0.0/0 md5'), { sslPossible: false }));
    expect(decisions.some((d) => d.scenario.ssl)).toBe(false);
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'allow' });
  });

  it('hostgssenc as the first candidate is undecidable for non-SSL connections, and never matches SSL ones', () => {
    const { decisions } = evaluateHba(input(rules('hostgssenc all all 0.0.0.0/0 gss', 'host all all 0.0.0.0/0 md5')));
    const d = pick(decisions, { address: REMOTE4, ssl: false });
    expect(d.outcome).toBe('undecidable');
    expect(d.reason).toMatch(/^undecidable because the GSS encryption state of a future connection is unknown/);
    expect(d.reason).toMatch(/line 1/);
    expect(pick(decisions, { address: REMOTE4, ssl: true })).toMatchObject({ outcome: 'allow', line: 2 });
  });

  it('hostnogssenc decides non-GSS connections and says so', () => {
    const { decisions } = evaluateHba(input(rules('hostnogssenc all all 0.0.0.0/0 reject', 'host all all 0.0.0.0/0 md5')));
    expect(pick(decisions, { address: REMOTE4, ssl: true })).toMatchObject({ outcome: 'reject', line: 1 });
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'reject', line: 1 });
  });
});

describe('evaluateHba: addresses', () => {
  it('IPv4 CIDR: inside matches, outside does not', () => {
    const sessions = [
      { address: '10.1.2.3', label: 'session 11' },
      { address: '10.2.0.1', label: 'session 12' },
    ];
    const { decisions } = evaluateHba(input(rules('host all all 10.1.0.0/16 md5'), { addresses: sessions }));
    expect(pick(decisions, { address: '10.1.2.3' })).toMatchObject({ outcome: 'allow', line: 1 });
    expect(pick(decisions, { address: '10.1.2.3' }).scenario.addressLabel).toBe('session 11');
    expect(pick(decisions, { address: '10.2.0.1' })).toMatchObject({ outcome: 'no_match' });
  });

  it('address + non-contiguous netmask compares the masked bits', () => {
    const rs = [rule(1, 'host all all 10.0.0.5 255.0.255.255 md5')];
    const sessions = [
      { address: '10.9.0.5', label: 'a' },
      { address: '10.9.0.6', label: 'b' },
    ];
    const { decisions } = evaluateHba(input(rs, { addresses: sessions }));
    expect(pick(decisions, { address: '10.9.0.5' }).outcome).toBe('allow');
    expect(pick(decisions, { address: '10.9.0.6' }).outcome).toBe('no_match');
  });

  it('IPv6 CIDR matches IPv6 clients only', () => {
    const { decisions } = evaluateHba(input(rules('host all all 2001:db8::/32 md5', 'host all all ::1/128 trust')));
    expect(pick(decisions, { address: REMOTE6 })).toMatchObject({ outcome: 'allow', line: 1 });
    expect(pick(decisions, { address: '::1' })).toMatchObject({ outcome: 'allow', line: 2, authMethod: 'trust' });
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'no_match' });
    expect(pick(decisions, { address: '127.0.0.1' })).toMatchObject({ outcome: 'no_match' });
  });

  it('an IPv4 rule never matches an IPv6 client, IPv4-mapped included', () => {
    const sessions = [{ address: '::ffff:203.0.113.9', label: 'session 5' }];
    const { decisions } = evaluateHba(input(rules('host all all 0.0.0.0/0 md5'), { addresses: sessions }));
    expect(pick(decisions, { address: REMOTE6 }).outcome).toBe('no_match');
    expect(pick(decisions, { address: '::ffff:203.0.113.9' }).outcome).toBe('no_match');
    expect(pick(decisions, { address: REMOTE4 }).outcome).toBe('allow');
  });

  it('an IPv6 rule for the mapped range matches an IPv4-mapped client', () => {
    const sessions = [{ address: '::ffff:203.0.113.9', label: 'session 5' }];
    const { decisions } = evaluateHba(input(rules('host all all ::ffff:0:0/96 md5'), { addresses: sessions }));
    expect(pick(decisions, { address: '::ffff:203.0.113.9' }).outcome).toBe('allow');
    expect(pick(decisions, { address: REMOTE4 }).outcome).toBe('no_match');
  });

  it('address "all" matches every TCP client', () => {
    const { decisions } = evaluateHba(input(rules('host all all all md5')));
    for (const d of decisions.filter((x) => x.scenario.transport === 'host')) expect(d.outcome).toBe('allow');
  });

  it('a host name is undecidable (DNS) when it is the first candidate', () => {
    const { decisions } = evaluateHba(input(rules('host all all .example.com md5', 'host all all 0.0.0.0/0 reject')));
    const d = pick(decisions, { address: REMOTE4 });
    expect(d.outcome).toBe('undecidable');
    expect(d.reason).toMatch(/^undecidable because line 1 names the host "\.example\.com".*DNS/);
    expect(d.line).toBe(1); // the line that could not be decided
    expect(pick(decisions, { transport: 'local' }).outcome).toBe('no_match');
  });

  it('samehost / samenet are undecidable', () => {
    for (const kw of ['samehost', 'samenet']) {
      const { decisions } = evaluateHba(input(rules(`host all all ${kw} md5`)));
      const d = pick(decisions, { address: '127.0.0.1' });
      expect(d.outcome).toBe('undecidable');
      expect(d.reason).toMatch(new RegExp(`^undecidable because line 1 uses ${kw}`));
    }
  });

  it('an undecidable line after a deciding one does not matter', () => {
    const { decisions } = evaluateHba(input(rules('host all all 0.0.0.0/0 reject', 'host all all .example.com trust')));
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'reject', line: 1 });
  });

  it('an undecidable line that certainly does not match (other user) is skipped', () => {
    const { decisions } = evaluateHba(input(rules('host all alice .example.com trust', 'host all all 0.0.0.0/0 md5')));
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'allow', line: 2 });
  });
});

describe('evaluateHba: database field', () => {
  it('sameuser matches the database named like the role only', () => {
    const { decisions } = evaluateHba(input(rules('host sameuser all 0.0.0.0/0 md5'), { databases: ['bob', 'app'] }));
    expect(pick(decisions, { database: 'bob', address: REMOTE4 }).outcome).toBe('allow');
    expect(pick(decisions, { database: 'app', address: REMOTE4 }).outcome).toBe('no_match');
  });

  it('samerole / samegroup match a database named like a role the target belongs to, or itself', () => {
    for (const kw of ['samerole', 'samegroup']) {
      const { decisions } = evaluateHba(
        input(rules(`host ${kw} all 0.0.0.0/0 md5`), { databases: ['ops', 'bob', 'app'], memberOf: ['ops'] }),
      );
      expect(pick(decisions, { database: 'ops', address: REMOTE4 }).outcome).toBe('allow');
      expect(pick(decisions, { database: 'bob', address: REMOTE4 }).outcome).toBe('allow');
      expect(pick(decisions, { database: 'app', address: REMOTE4 }).outcome).toBe('no_match');
    }
  });

  it('literal database names and lists match exactly', () => {
    const { decisions } = evaluateHba(input(rules('host sales,app all 0.0.0.0/0 md5'), { databases: ['app', 'App', 'other'] }));
    expect(pick(decisions, { database: 'app', address: REMOTE4 }).outcome).toBe('allow');
    expect(pick(decisions, { database: 'App', address: REMOTE4 }).outcome).toBe('no_match');
    expect(pick(decisions, { database: 'other', address: REMOTE4 }).outcome).toBe('no_match');
  });

  it('replication matches only physical replication connections, and "all" does not match them', () => {
    const rs = rules('host all all 0.0.0.0/0 md5', 'host replication bob 0.0.0.0/0 trust');
    const { decisions } = evaluateHba(input(rs, { replication: true }));
    const repl = pick(decisions, { database: 'replication', replication: true, address: REMOTE4 });
    expect(repl).toMatchObject({ outcome: 'allow', line: 2, authMethod: 'trust' });
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'allow', line: 1 });
    expect(pick(decisions, { transport: 'local', database: 'replication', replication: true }).outcome).toBe('no_match');
  });

  it('the replication keyword does not match an ordinary connection', () => {
    const { decisions } = evaluateHba(input(rules('host replication all 0.0.0.0/0 trust'), { databases: ['app', 'replication'] }));
    expect(pick(decisions, { address: REMOTE4 }).outcome).toBe('no_match');
    // a database that happens to be called "replication", reached by an ordinary connection
    expect(pick(decisions, { database: 'replication', address: REMOTE4 }).outcome).toBe('no_match');
  });

  it('no replication scenarios without the REPLICATION attribute', () => {
    const { decisions } = evaluateHba(input(rules('host replication all 0.0.0.0/0 trust')));
    expect(decisions.some((d) => (d.scenario as HbaEvalScenario).replication)).toBe(false);
  });

  it('a PG16 regex in the database field is undecidable when it is the first candidate', () => {
    const { decisions } = evaluateHba(input(rules('host /^ap all 0.0.0.0/0 trust', 'host all all 0.0.0.0/0 md5')));
    const d = pick(decisions, { address: REMOTE4 });
    expect(d.outcome).toBe('undecidable');
    expect(d.reason).toMatch(/^undecidable because the rule uses a PostgreSQL regular expression \(line 1/);
  });

  it('a regex does not hide a literal match in the same list', () => {
    const { decisions } = evaluateHba(input(rules('host /^x,app all 0.0.0.0/0 trust')));
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'allow', line: 1 });
  });

  it('physical replication connections ignore regex database tokens (only the keyword counts)', () => {
    const { decisions } = evaluateHba(input(rules('host /^rep all 0.0.0.0/0 trust'), { replication: true }));
    expect(pick(decisions, { database: 'replication', replication: true, address: REMOTE4 }).outcome).toBe('no_match');
  });

  it('before PG16 a token starting with / is a literal name', () => {
    const { decisions } = evaluateHba(input(rules('host /^ap all 0.0.0.0/0 trust', 'host all all 0.0.0.0/0 md5'), { regexTokens: false }));
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'allow', line: 2 });
  });
});

describe('evaluateHba: user field', () => {
  it('+group matches a direct member', () => {
    const { decisions } = evaluateHba(input(rules('host all +ops 0.0.0.0/0 reject', 'host all all 0.0.0.0/0 md5'), { memberOf: ['ops'] }));
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'reject', line: 1 });
  });

  it('+group matches an inherited member (memberOf is already transitive)', () => {
    const { decisions } = evaluateHba(
      input(rules('host all +admins 0.0.0.0/0 reject', 'host all all 0.0.0.0/0 md5'), { memberOf: ['ops', 'admins'] }),
    );
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'reject', line: 1 });
  });

  it('+group does not match a non-member', () => {
    const { decisions } = evaluateHba(input(rules('host all +ops 0.0.0.0/0 reject', 'host all all 0.0.0.0/0 md5'), { memberOf: ['dev'] }));
    expect(pick(decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'allow', line: 2 });
  });

  it('+role matches the role itself (is_member_of_role_nosuper: member == role)', () => {
    const { decisions } = evaluateHba(input(rules('host all +bob 0.0.0.0/0 reject')));
    expect(pick(decisions, { address: REMOTE4 }).outcome).toBe('reject');
  });

  it('a PG16 regex in the user field is undecidable', () => {
    const { decisions } = evaluateHba(input(rules('host all /^b 0.0.0.0/0 reject')));
    const d = pick(decisions, { address: REMOTE4 });
    expect(d.outcome).toBe('undecidable');
    expect(d.reason).toMatch(/^undecidable because the rule uses a PostgreSQL regular expression \(line 1, user field/);
  });

  it('names are exact: case, quotes and unicode', () => {
    const hostile = 'Bob "the" Admin';
    const rs = [
      rule(1, 'host all x 0.0.0.0/0 reject', { userName: [hostile] }),
      rule(2, 'host all x 0.0.0.0/0 reject', { userName: ['ünïcode'] }),
      rule(3, 'host all upper 0.0.0.0/0 reject'),
      rule(4, 'host all all 0.0.0.0/0 md5'),
    ];
    expect(pick(evaluateHba(input(rs, { role: hostile })).decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'reject', line: 1 });
    expect(pick(evaluateHba(input(rs, { role: 'ünïcode' })).decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'reject', line: 2 });
    // the same letters decomposed (NFD) are a different name
    expect(pick(evaluateHba(input(rs, { role: 'ünïcode'.normalize('NFD') })).decisions, { address: REMOTE4 }).line).toBe(4);
    expect(pick(evaluateHba(input(rs, { role: 'UPPER' })).decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'allow', line: 4 });
    expect(pick(evaluateHba(input(rs, { role: 'upper' })).decisions, { address: REMOTE4 })).toMatchObject({ outcome: 'reject', line: 3 });
  });
});

describe('evaluateHba: scenarios', () => {
  it('covers every database x (local, each address x both SSL states), each exactly once', () => {
    const sessions = [
      { address: '127.0.0.1', label: 'session 42' },
      { address: '10.0.0.9', label: 'session 43' },
    ];
    const { decisions } = evaluateHba(input(rules('host all all 0.0.0.0/0 md5'), { databases: ['a', 'b'], addresses: sessions }));
    // addresses: 127.0.0.1 (session, deduped with loopback), 10.0.0.9, 203.0.113.7, 2001:db8::7, ::1
    expect(decisions).toHaveLength(2 * (1 + 5 * 2));
    const keys = decisions.map((d) => `${d.scenario.transport}|${d.scenario.database}|${d.scenario.address}|${d.scenario.ssl}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(pick(decisions, { database: 'a', address: '127.0.0.1' }).scenario.addressLabel).toBe('session 42');
    for (const addr of [REMOTE4, REMOTE6, '::1', '10.0.0.9']) pick(decisions, { database: 'b', address: addr, ssl: true });
  });
});

describe('evaluateHba: shadowed rejects', () => {
  it('reports a reject line that an earlier allowing line shadows, naming both lines, once per pair', () => {
    const { shadowedRejects } = evaluateHba(
      input(rules('host all all 0.0.0.0/0 scram-sha-256', 'host all bob 0.0.0.0/0 reject'), { databases: ['a', 'b'] }),
    );
    expect(shadowedRejects).toHaveLength(1);
    expect(shadowedRejects[0]).toMatchObject({ rejectLine: 2, shadowingLine: 1, shadowingAuthMethod: 'scram-sha-256' });
    expect(shadowedRejects[0]!.scenario.transport).toBe('host');
  });

  it('a reject placed first is not shadowed', () => {
    const { shadowedRejects, decisions } = evaluateHba(
      input(rules('host all bob 0.0.0.0/0 reject', 'host all all 0.0.0.0/0 scram-sha-256')),
    );
    expect(shadowedRejects).toEqual([]);
    expect(pick(decisions, { address: REMOTE4 }).outcome).toBe('reject');
  });

  it('reports each shadowing line separately', () => {
    const rs = rules('host all all 127.0.0.1/32 md5', 'host all all 0.0.0.0/0 scram-sha-256', 'host all bob 0.0.0.0/0 reject');
    const pairs = evaluateHba(input(rs)).shadowedRejects.map((s) => [s.rejectLine, s.shadowingLine]);
    expect(pairs).toEqual(
      expect.arrayContaining([
        [3, 1],
        [3, 2],
      ]),
    );
    expect(pairs).toHaveLength(2);
  });

  it('finds a shadowed reject aimed at a network no session came from', () => {
    const { shadowedRejects } = evaluateHba(input(rules('host all all 10.0.0.0/8 md5', 'host all bob 10.0.0.0/8 reject')));
    expect(shadowedRejects).toHaveLength(1);
    expect(shadowedRejects[0]).toMatchObject({ rejectLine: 2, shadowingLine: 1 });
    // found through the allowing range's own representative (network + 1), now a decision of its own
    expect(shadowedRejects[0]!.scenario.address).toBe('10.0.0.1');
  });

  it('a reject by +group membership is reported as shadowed too', () => {
    const rs = rules('host all all 0.0.0.0/0 md5', 'host all +ops 0.0.0.0/0 reject');
    expect(evaluateHba(input(rs, { memberOf: ['ops'] })).shadowedRejects).toHaveLength(1);
    expect(evaluateHba(input(rs, { memberOf: [] })).shadowedRejects).toHaveLength(0);
  });

  it('a reject for another role, or one shadowed by an earlier reject, is not reported', () => {
    expect(evaluateHba(input(rules('host all all 0.0.0.0/0 md5', 'host all alice 0.0.0.0/0 reject'))).shadowedRejects).toEqual([]);
    expect(evaluateHba(input(rules('host all bob 0.0.0.0/0 reject', 'host all all 0.0.0.0/0 reject'))).shadowedRejects).toEqual([]);
  });

  it('local connections are checked as well', () => {
    const { shadowedRejects } = evaluateHba(input(rules('local all all trust', 'local all bob reject')));
    expect(shadowedRejects).toHaveLength(1);
    expect(shadowedRejects[0]).toMatchObject({ rejectLine: 2, shadowingLine: 1, shadowingAuthMethod: 'trust' });
    expect(shadowedRejects[0]!.scenario.transport).toBe('local');
  });

  it('no shadowing is claimed when the earlier line is undecidable', () => {
    expect(evaluateHba(input(rules('host all all .example.com md5', 'host all bob 0.0.0.0/0 reject'))).shadowedRejects).toEqual([]);
  });
});

describe('helpers', () => {
  it('isBlockingHbaError: "cannot match" lines still load, everything else blocks the reload', () => {
    expect(isBlockingHbaError('hostssl record cannot match because SSL is disabled')).toBe(false);
    expect(isBlockingHbaError('hostgssenc record cannot match because GSSAPI is not supported by this build')).toBe(false);
    expect(isBlockingHbaError('invalid authentication method "bogus"')).toBe(true);
  });

  it('describeRule renders the line as written', () => {
    expect(describeRule(rule(1, 'host all all 0.0.0.0/0 scram-sha-256'))).toBe('host all all 0.0.0.0/0 scram-sha-256');
    expect(describeRule(rule(1, 'local all +ops peer map=x'))).toBe('local all +ops peer map=x');
    expect(describeRule(rule(1, 'host all x 10.0.0.5 255.0.255.255 md5', { userName: ['a b'] }))).toBe(
      'host all "a b" 10.0.0.5 255.0.255.255 md5',
    );
  });

  it('sessionAddresses groups pids by address and skips sockets', () => {
    const s = (pid: number, clientAddr: string | null) => ({ pid, clientAddr }) as never;
    expect(sessionAddresses([s(1, '10.0.0.1'), s(2, null), s(3, '10.0.0.1'), s(4, '::1')])).toEqual([
      { address: '10.0.0.1', label: 'sessions 1, 3' },
      { address: '::1', label: 'session 4' },
    ]);
  });
});

function facts(hba: Partial<HbaFacts>, roleName = 'bob'): RoleFacts {
  const base = quietFacts();
  return quietFacts({ role: { ...base.role, name: roleName }, hba: { ...base.hba, ...hba } });
}

describe('hbaCheck (pure)', () => {
  const rs = rules('local all all trust', 'host all all 0.0.0.0/0 scram-sha-256', 'host all bob 0.0.0.0/0 reject');
  const evald = evaluateHba(input(rs));

  it('hba.unreadable is info, says so plainly, and is the only finding', () => {
    const f = hbaCheck.evaluate(facts({ readable: false, unreadableReason: 'permission denied: x' }));
    expect(f.map((x) => [x.id, x.severity])).toEqual([['hba.unreadable', 'info']]);
    expect(f[0]!.detail).toMatch(/permission denied/);
  });

  it('hba.not_rejected and hba.reject_shadowed name the lines', () => {
    const f = hbaCheck.evaluate(facts({ rules: rs, ...evald }));
    const nr = f.find((x) => x.id === 'hba.not_rejected')!;
    expect(nr.severity).toBe('high');
    expect(nr.detail).toMatch(/line 1 \(local all all trust\)/);
    expect(nr.detail).toMatch(/line 2 \(host all all 0\.0\.0\.0\/0 scram-sha-256\)/);
    expect(nr.remediation).toMatch(/above line 1/);
    const sh = f.find((x) => x.id === 'hba.reject_shadowed')!;
    expect(sh.severity).toBe('high');
    expect(sh.detail).toMatch(
      /reject rule at line 3 .*never fires for TCP connections to database "app" from .*line 2 \(host all all 0\.0\.0\.0\/0 scram-sha-256\) matches first/,
    );
    expect(sh.remediation).toMatch(/Move the reject rule at line 3 above line 2/);
    expect(f.every((x) => x.exposure === false)).toBe(true);
  });

  it('no hba.not_rejected when every connection is rejected', () => {
    const e = evaluateHba(input(rules('local all bob reject', 'host all bob all reject')));
    expect(hbaCheck.evaluate(facts({ ...e })).map((x) => x.id)).toEqual([]);
  });

  it('a medium hba.not_rejected when nothing is admitted for sure but some connections are undecidable', () => {
    const e = evaluateHba(input(rules('host all all .example.com md5')));
    const f = hbaCheck.evaluate(facts({ ...e }));
    expect(f.map((x) => [x.id, x.severity])).toEqual([['hba.not_rejected', 'medium']]);
    expect(f[0]!.detail).toMatch(/undecidable because line 1 names the host/);
  });

  it('file errors: blocking ones are high and say the old rules are in force; "cannot match" ones are low', () => {
    const blocking = hbaCheck.evaluate(
      facts({ fileErrors: [{ line: 4, fileName: null, error: 'invalid authentication method "bogus"' }] }),
    );
    expect(blocking.map((x) => [x.id, x.severity])).toEqual([['hba.file_error', 'high']]);
    expect(blocking[0]!.detail).toMatch(/line 4: invalid authentication method "bogus"/);
    expect(blocking[0]!.detail).toMatch(/previous ones/);
    expect(blocking[0]!.remediation).toMatch(/Fix the error at line 4.*pg_reload_conf/);
    const soft = hbaCheck.evaluate(
      facts({ fileErrors: [{ line: 3, fileName: null, error: 'hostssl record cannot match because SSL is disabled' }] }),
    );
    expect(soft.map((x) => [x.id, x.severity])).toEqual([['hba.file_error', 'low']]);
  });

  it('hba.reload_pending is medium', () => {
    const f = hbaCheck.evaluate(facts({ reloadPending: true }));
    expect(f.map((x) => [x.id, x.severity])).toEqual([['hba.reload_pending', 'medium']]);
    expect(f[0]!.remediation).toMatch(/pg_reload_conf/);
  });

  it('the not-in-force caveat: blocking errors or a pending reload, never a "cannot match" warning alone', () => {
    expect(notInForceCaveat({ fileErrors: [{ line: 2, fileName: null, error: 'invalid IP mask "x"' }], reloadPending: false })).toMatch(
      /file on disk has errors \(line 2\).*previous ones, which SQL cannot show/,
    );
    expect(notInForceCaveat({ fileErrors: [], reloadPending: true })).toMatch(/changed after the last reload/);
    expect(
      notInForceCaveat({
        fileErrors: [{ line: 2, fileName: null, error: 'hostssl record cannot match because SSL is disabled' }],
        reloadPending: false,
      }),
    ).toBeNull();
    expect(notInForceCaveat({ fileErrors: [], reloadPending: null })).toBeNull();
    const caveated = withCaveat(evald.decisions, 'CAVEAT');
    expect(caveated.every((d) => d.reason?.startsWith('CAVEAT'))).toBe(true);
  });

  it('hbaAllowsWithoutPassword keeps allows by methods that ignore VALID UNTIL', () => {
    const e = evaluateHba(
      input(
        rules('local all all peer', 'host all all 127.0.0.1/32 trust', 'host all all 0.0.0.0/0 scram-sha-256', 'host all all ::/0 md5'),
      ),
    );
    const open = hbaAllowsWithoutPassword(facts({ ...e }).hba);
    expect(new Set(open.map((d) => d.authMethod))).toEqual(new Set(['peer', 'trust']));
    expect(open.every((d) => d.outcome === 'allow')).toBe(true);
    expect(hbaAllowsWithoutPassword(facts({ readable: false }).hba)).toEqual([]);
  });
});
