// How stop() reaches every loop at once: whatever a loop waits for (a backoff or interval sleep, a
// connect) ends when the guard halts, so that stop() never waits out a delay or a black-holed host.
export class StopSignal {
  stopped = false;
  private waiters = new Set<() => void>();

  /** Wait ms, or less when halted meanwhile; no wait at all once halted. */
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  /** What `pending` resolves to, or null when the guard halts first. */
  async race<T>(pending: Promise<T>): Promise<T | null> {
    let onStop: () => void = () => undefined;
    const stoppedWhile = new Promise<null>((resolve) => {
      onStop = () => resolve(null);
      this.waiters.add(onStop);
    });
    try {
      return await Promise.race([pending, stoppedWhile]);
    } finally {
      this.waiters.delete(onStop);
    }
  }

  halt(): void {
    this.stopped = true;
    for (const w of [...this.waiters]) w();
  }
}
