// The live view's loop: refresh every interval, feed keys, resizes and results to the reducer, draw each
// new state, and carry out its effects. One refresh at a time; a signal is awaited before quitting so
// that its audit line is written.
import type { ChalkInstance } from 'chalk';
import { describeError } from '../../errors.js';
import type { KillAction } from '../kill.js';
import { reduce, type Effect, type WatchEvent } from './keys.js';
import { renderFrame } from './render.js';
import type { SignalOutcome } from './signal.js';
import { initialState, type Snapshot, type WatchRow, type WatchSort } from './state.js';
import { openTerminal, type TerminalStreams } from './terminal.js';

export interface WatchDeps {
  title: string;
  /** Seconds between refreshes. */
  interval: number;
  multiNode: boolean;
  sort: WatchSort;
  c: ChalkInstance;
  streams: TerminalStreams;
  fetch(): Promise<Snapshot>;
  signal(row: WatchRow, action: KillAction): Promise<SignalOutcome>;
}

/** Until q, Ctrl+C, SIGINT or SIGTERM; `auditFailed`: some signal's audit line could not be written. */
export async function runWatch(d: WatchDeps): Promise<{ auditFailed: boolean }> {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let quitting = false;
  let signalling: Promise<void> | null = null;
  let auditFailed = false;
  let timer: NodeJS.Timeout | undefined;
  let fetching = false;
  let again = false;

  const term = openTerminal(d.streams, {
    key: (key) => dispatch({ type: 'key', key }),
    resize: () => dispatch({ type: 'resize', ...term.size() }),
    stop: () => run({ kind: 'quit' }),
  });
  let state = initialState({ title: d.title, interval: d.interval, multiNode: d.multiNode, sort: d.sort, keys: term.keys, ...term.size() });

  function dispatch(e: WatchEvent): void {
    if (quitting) return;
    const step = reduce(state, e);
    state = step.state;
    term.draw(renderFrame(state, d.c));
    if (step.effect) run(step.effect);
  }

  function run(e: Effect): void {
    if (e.kind === 'quit') {
      quitting = true;
      if (!signalling) finish();
    } else if (e.kind === 'refresh') refreshNow();
    else
      signalling = d
        .signal(e.row, e.action)
        .then(
          (out) => {
            auditFailed ||= out.auditFailed;
            return out.message;
          },
          (err: unknown) => `error: ${describeError(err)}`,
        )
        .then((message) => {
          signalling = null;
          if (quitting) finish();
          else dispatch({ type: 'signalled', message });
        });
  }

  async function refresh(): Promise<void> {
    fetching = true;
    try {
      const snapshot = await d.fetch();
      dispatch({ type: 'snapshot', snapshot });
    } catch (err) {
      dispatch({ type: 'refreshFailed', error: describeError(err) });
    } finally {
      fetching = false;
    }
    if (again) refreshNow();
    else if (!quitting) timer = setTimeout(refreshNow, d.interval * 1000);
  }

  function refreshNow(): void {
    again = fetching;
    if (fetching || quitting) return;
    clearTimeout(timer);
    void refresh();
  }

  try {
    term.draw(renderFrame(state, d.c));
    refreshNow();
    await finished;
  } finally {
    quitting = true;
    clearTimeout(timer);
    term.close();
  }
  return { auditFailed };
}
