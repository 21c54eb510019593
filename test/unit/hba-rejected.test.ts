import { describe, expect, it } from 'vitest';
import { rejectedEverywhere } from '../../src/hba/evaluate.js';
import type { HbaRule } from '../../src/hba/types.js';

let line = 0;
function rule(type: string, database: string, user: string, address: string | null, netmask: string | null, method: string): HbaRule {
  line++;
  return {
    lineNumber: line,
    ruleNumber: null,
    fileName: null,
    type,
    database: database.split(','),
    userName: user.split(','),
    address,
    netmask,
    authMethod: method,
    options: null,
    error: null,
    // as read from the file, unquoted (a view-only rule has no `quoted`)
    quoted: { database: database.split(',').map(() => false), userName: user.split(',').map(() => false) },
  };
}
const base = { role: 'mallory', memberOf: [] as string[], replication: false };

describe('rejectedEverywhere', () => {
  it('pgrevoke\u2019s own block at the top rejects everything', () => {
    line = 0;
    const rules = [
      rule('local', 'all', 'mallory', null, null, 'reject'),
      rule('host', 'all', 'mallory', 'all', null, 'reject'),
      rule('host', 'all', 'all', '0.0.0.0', '0.0.0.0', 'scram-sha-256'),
    ];
    expect(rejectedEverywhere({ ...base, rules }).rejected).toBe(true);
  });

  it('a reject below an allowing line does not count, naming that line', () => {
    line = 0;
    const rules = [
      rule('host', 'all', 'all', '10.0.0.0', '255.0.0.0', 'scram-sha-256'),
      rule('host', 'all', 'mallory', 'all', null, 'reject'),
    ];
    const r = rejectedEverywhere({ ...base, rules });
    expect(r.rejected).toBe(false);
    expect(r.reason).toContain('line 1');
  });

  it('an IPv4-only reject leaves IPv6 lines open', () => {
    line = 0;
    const rules = [
      rule('host', 'all', 'mallory', '0.0.0.0', '0.0.0.0', 'reject'),
      rule('local', 'all', 'mallory', null, null, 'reject'),
      rule('host', 'all', 'all', '::', '::', 'md5'),
    ];
    expect(rejectedEverywhere({ ...base, rules }).rejected).toBe(false);
  });

  it('a reject for one database does not cover the others', () => {
    line = 0;
    const rules = [rule('local', 'app', 'mallory', null, null, 'reject'), rule('local', 'all', 'all', null, null, 'trust')];
    expect(rejectedEverywhere({ ...base, rules }).rejected).toBe(false);
  });

  it('lines for other roles do not open anything; no match means rejected', () => {
    line = 0;
    const rules = [rule('local', 'all', 'alice', null, null, 'trust'), rule('host', 'all', 'bob', 'all', null, 'md5')];
    expect(rejectedEverywhere({ ...base, rules }).rejected).toBe(true);
  });

  it('+group membership opens a path; memberOf is honoured', () => {
    line = 0;
    const rules = [rule('local', 'all', '+admins', null, null, 'trust')];
    expect(rejectedEverywhere({ ...base, rules }).rejected).toBe(true);
    expect(rejectedEverywhere({ ...base, memberOf: ['admins'], rules }).rejected).toBe(false);
  });

  it('a replication-capable role needs replication covered too', () => {
    line = 0;
    const rules = [
      rule('local', 'all', 'mallory', null, null, 'reject'),
      rule('host', 'all', 'mallory', 'all', null, 'reject'),
      rule('host', 'replication', 'all', 'all', null, 'trust'),
    ];
    expect(rejectedEverywhere({ ...base, rules }).rejected).toBe(true);
    expect(rejectedEverywhere({ ...base, replication: true, rules }).rejected).toBe(false);
  });

  it('a hostssl reject covers only SSL, so a later host line stays open', () => {
    line = 0;
    const rules = [
      rule('local', 'all', 'mallory', null, null, 'reject'),
      rule('hostssl', 'all', 'mallory', 'all', null, 'reject'),
      rule('host', 'all', 'all', 'all', null, 'md5'),
    ];
    expect(rejectedEverywhere({ ...base, rules }).rejected).toBe(false);
  });
});
