// A SIGINT/SIGTERM seen during apply. The walk stops before the next step; whoever is waiting on
// the server (the executor's sessions) is told at once, so a statement queued on an attacker's lock
// is cancelled rather than finished.
export class Interrupt {
  interrupted = false;
  /** What stopped the run, as reports say it. */
  reason = 'SIGINT/SIGTERM';
  private wake: (() => void) | null = null;
  private readonly hooks = new Set<() => void>();

  trigger(reason?: string): void {
    if (this.interrupted) return;
    this.interrupted = true;
    if (reason) this.reason = reason;
    this.wake?.();
    for (const h of this.hooks) h();
  }

  /** Run `fn` when the interrupt comes; returns the unsubscribe. */
  onTrigger(fn: () => void): () => void {
    this.hooks.add(fn);
    return () => this.hooks.delete(fn);
  }

  /** Sleep that a signal cuts short. */
  sleep(ms: number): Promise<void> {
    if (this.interrupted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
