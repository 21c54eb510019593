// How tables are laid out, as the output context decides it when a command starts. Apart from the
// table code on purpose: the context is built on every command's path (cutoff's before
// containment), and this must not load the table and width libraries with it.

/** Fitted to a terminal's width, or (null: piped) as tables always were. */
export interface TableLayout {
  columns: number | null;
  /** --wide: every column and every value whole, whatever the width. */
  wide: boolean;
}

let layout: TableLayout = { columns: null, wide: false };

/**
 * Set once by the output context (src/context.ts) when a command starts. The renderers take only a
 * chalk instance; the terminal's width, like its color, is the process's, decided in one place.
 */
export function setTableLayout(next: TableLayout): void {
  layout = next;
}

export function tableLayout(): TableLayout {
  return layout;
}
