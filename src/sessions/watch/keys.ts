// What each event does to the live view: keys, new snapshots, a resize, a signal's outcome. Pure:
// (state, event) -> (state, effect); the loop (loop.ts) carries the effects out.
import type { KillAction } from '../kill.js';
import { describeRow, moveBy, pageSize, selectedRow, settle, WATCH_SORTS, type Snapshot, type WatchRow, type WatchState } from './state.js';

/** A key as readline's keypress events describe it. */
export interface WatchKey {
  name?: string;
  sequence?: string;
  ctrl?: boolean;
  meta?: boolean;
  shift?: boolean;
}

export type WatchEvent =
  | { type: 'key'; key: WatchKey }
  | { type: 'snapshot'; snapshot: Snapshot }
  | { type: 'refreshFailed'; error: string }
  | { type: 'resize'; columns: number; rows: number }
  | { type: 'signalled'; message: string };

export type Effect = { kind: 'quit' } | { kind: 'refresh' } | { kind: 'signal'; action: KillAction; row: WatchRow };

export interface Step {
  state: WatchState;
  effect?: Effect;
}

export function reduce(s: WatchState, e: WatchEvent): Step {
  switch (e.type) {
    case 'snapshot':
      return { state: settle({ ...s, snapshot: e.snapshot, error: null }) };
    case 'refreshFailed':
      return { state: { ...s, error: e.error } };
    case 'resize':
      return { state: settle({ ...s, columns: e.columns, rows: e.rows }) };
    case 'signalled':
      return { state: { ...s, mode: { kind: 'browse' }, message: e.message }, effect: { kind: 'refresh' } };
    case 'key':
      return onKey(s, e.key);
  }
}

const isQuit = (k: WatchKey) => k.ctrl === true && k.name === 'c';

/** A printable character typed (not a control or escape sequence). */
function typed(k: WatchKey): string | null {
  const ch = k.sequence ?? '';
  return !k.ctrl && !k.meta && ch.length === 1 && ch >= ' ' && ch !== '\x7f' ? ch : null;
}

export function onKey(s: WatchState, k: WatchKey): Step {
  if (isQuit(k)) return { state: s, effect: { kind: 'quit' } };
  switch (s.mode.kind) {
    case 'filter':
      return { state: filterKey(s, s.mode.input, k) };
    case 'confirm':
      return confirmKey(s, s.mode.action, s.mode.row, k);
    case 'busy':
      // the signal is under way: only quitting is taken (after it, so that its audit line is written)
      return k.sequence === 'q' ? { state: s, effect: { kind: 'quit' } } : { state: s };
    case 'browse':
      return browseKey({ ...s, message: null }, k);
  }
}

function browseKey(s: WatchState, k: WatchKey): Step {
  const page = Math.max(1, pageSize(s));
  const move: Record<string, number> = { up: -1, down: 1, pageup: -page, pagedown: page, home: -Infinity, end: Infinity };
  if (k.name && k.name in move && !k.shift) return { state: moveBy(s, move[k.name]!) };
  switch (k.sequence) {
    case 'j':
      return { state: moveBy(s, 1) };
    case 'k':
      return { state: moveBy(s, -1) };
    case 'q':
      return { state: s, effect: { kind: 'quit' } };
    case 'K':
      return ask(s, 'terminate');
    case 'C':
      return ask(s, 'cancel');
    case 's': {
      const sort = WATCH_SORTS[(WATCH_SORTS.indexOf(s.sort) + 1) % WATCH_SORTS.length]!;
      return { state: settle({ ...s, sort }) };
    }
    case '/':
      return { state: { ...s, mode: { kind: 'filter', input: s.filter } } };
    case 'r':
      return { state: s, effect: { kind: 'refresh' } };
  }
  if (k.name === 'escape' && s.filter) return { state: settle({ ...s, filter: '' }) };
  return { state: s };
}

function ask(s: WatchState, action: KillAction): Step {
  const row = selectedRow(s);
  if (!row) return { state: { ...s, message: 'no session selected' } };
  return { state: { ...s, mode: { kind: 'confirm', action, row } } };
}

/** The question on the bottom line, and the line shown while the signal is under way. */
export function confirmQuestion(action: KillAction, row: WatchRow, multiNode: boolean): string {
  return `${action === 'cancel' ? 'cancel the query of' : 'terminate'} pid ${describeRow(row, multiNode)}? y/N`;
}

function confirmKey(s: WatchState, action: KillAction, row: WatchRow, k: WatchKey): Step {
  if (k.sequence === 'y' || k.sequence === 'Y') {
    const verb = action === 'cancel' ? 'cancelling the query of' : 'terminating';
    return {
      state: { ...s, mode: { kind: 'busy', text: `${verb} pid ${describeRow(row, s.multiNode)}…` } },
      effect: { kind: 'signal', action, row },
    };
  }
  return { state: { ...s, mode: { kind: 'browse' }, message: 'not confirmed; nothing was signalled' } };
}

/** Typing a filter: Enter applies it, Esc clears it, Backspace and Ctrl+U edit. */
function filterKey(s: WatchState, input: string, k: WatchKey): WatchState {
  if (k.name === 'return' || k.name === 'enter') return settle({ ...s, filter: input.trim(), mode: { kind: 'browse' } });
  if (k.name === 'escape') return settle({ ...s, filter: '', mode: { kind: 'browse' } });
  if (k.name === 'backspace') return { ...s, mode: { kind: 'filter', input: input.slice(0, -1) } };
  if (k.ctrl && k.name === 'u') return { ...s, mode: { kind: 'filter', input: '' } };
  const ch = typed(k);
  return ch === null ? s : { ...s, mode: { kind: 'filter', input: input + ch } };
}
