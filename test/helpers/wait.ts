// Polling for a condition a real server reaches in its own time: no fixed sleeps in the tests.

/** Resolves with the first truthy value `fn` gives; throws after `ms`, naming `what`. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false | null>,
  ms = 20_000,
  what = 'condition',
  everyMs = 25,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
