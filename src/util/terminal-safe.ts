// What would move the cursor, recolor or reorder a line on the operator's terminal: C0 and C1
// controls, DEL, bidirectional marks, overrides and isolates. Names and query texts are the
// attacker's to choose, so every renderer shows them through these.
const UNSAFE = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');

/** True when `text` holds a character that could act on a terminal. */
export function hasUnsafe(text: string): boolean {
  return UNSAFE.test(text);
}

/** `text` with every such character shown as U+FFFD. */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE_ALL, '\ufffd');
}
