// log_hostname = on: the server logs the client's reverse-DNS name where the address would be, and
// the client owns its PTR record, which may read `10.1.2.3`: no failure may get an address from it
// (else an attacker's failures lock a victim's address out). Red-team finding, issue 16.
import { describe, expect, it } from 'vitest';
import { failuresIn, fixture } from '../helpers/serverlog-parse.js';

// a csvlog failure whose connection_from is a "host name" made to look like an address
const PTR_LINE =
  '2026-12-01 14:53:25.750 UTC,"alice","postgres",11381,"10.1.2.3:57444",6b0edf65.2c75,2,"authentication",2026-12-01 14:53:25 UTC,1/1,0,FATAL,28P01,"password authentication failed for user ""alice""","Connection matched file ""/d/pg_hba.conf"" line 3: ""host all all 0.0.0.0/0 scram-sha-256""",,,,,,,,"client backend",,0\n';

describe('log_hostname = on', () => {
  it('a host name that reads as an address gives no address', () => {
    expect(failuresIn('csvlog', PTR_LINE).failures.map((f) => f.address)).toEqual(['10.1.2.3']);
    expect(failuresIn('csvlog', PTR_LINE, { hostnames: true }).failures.map((f) => f.address)).toEqual([null]);
  });

  it('every failure of a real log loses its address, and is still counted for its role', () => {
    const off = failuresIn('csvlog', fixture('pg18.csv')).failures;
    const on = failuresIn('csvlog', fixture('pg18.csv'), { hostnames: true });
    expect(off.some((f) => f.address !== null)).toBe(true);
    expect(on.failures.map((f) => f.address)).toEqual(off.map(() => null));
    expect(on.failures.map((f) => [f.user, f.kind])).toEqual(off.map((f) => [f.user, f.kind]));
    expect(on.extractor.stats.unaddressed).toBe(off.length);
  });
});
