// Several statements in one simple-query round trip, and each one's rows: pg answers such a query
// with an array of results (one result when there is one statement).
import type { Queryable } from '../checks/types.js';

export async function queryAll(q: Queryable, sql: string): Promise<object[][]> {
  const res = (await q.query(sql)) as unknown;
  return (Array.isArray(res) ? res : [res]).map((r) => (r as { rows: object[] }).rows);
}
