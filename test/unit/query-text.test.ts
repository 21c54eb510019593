// Query texts as pgrevoke records them: exact but for the password literals in them.
import { describe, expect, it } from 'vitest';
import { queryText } from '../../src/pg/redact.js';

describe('queryText', () => {
  it('masks PASSWORD literals (plain, E-strings, doubled quotes) and conninfo passwords, and nothing else', () => {
    expect(queryText(`ALTER ROLE mallory PASSWORD 'hunter2'`)).toBe(`ALTER ROLE mallory PASSWORD '*****'`);
    expect(queryText(`create role x login encrypted password 'it''s'`)).toBe(`create role x login encrypted password '*****'`);
    expect(queryText(`ALTER ROLE x PASSWORD E'a\\'b' VALID UNTIL 'infinity'`)).toBe(`ALTER ROLE x PASSWORD '*****' VALID UNTIL 'infinity'`);
    expect(queryText(`CREATE USER MAPPING FOR x SERVER s OPTIONS (user 'u', password 'pw')`)).toBe(
      `CREATE USER MAPPING FOR x SERVER s OPTIONS (user 'u', password '*****')`,
    );
    expect(queryText(`CREATE SUBSCRIPTION s CONNECTION 'host=a password=pw dbname=d' PUBLICATION p`)).toBe(
      `CREATE SUBSCRIPTION s CONNECTION 'host=a password=***** dbname=d' PUBLICATION p`,
    );
    expect(queryText(`SELECT password FROM users WHERE id = 1`)).toBe(`SELECT password FROM users WHERE id = 1`);
    expect(queryText(null)).toBeNull();
  });
});
