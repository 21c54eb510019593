// Bounded concurrency: run fn over items with at most `limit` calls in flight, results in input order.

export async function mapBounded<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  const width = Math.min(items.length, Math.max(1, Math.floor(limit) || 1));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}
