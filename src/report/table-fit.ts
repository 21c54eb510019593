// Fitting a table to a terminal's width: which columns stay, and how wide each one is. Pure (widths
// in, widths out), so the unit tests check cuts and the drop order without a terminal; table() in
// format.ts measures the cells, calls fitColumns and draws what it returns.

/** One column as the fitter sees it. */
export interface FitColumn {
  /** Display width of its widest cell or of its heading. */
  natural: number;
  /** The narrowest it may be cut to (the cut text ends in an ellipsis); absent: never cut. */
  min?: number;
  /** Its place in the drop order once cutting is not enough: 1 goes first; absent: never dropped. */
  drop?: number;
}

export interface Fit {
  /** Indexes of the columns kept, in their order. */
  keep: number[];
  /** Content width of each kept column, parallel to `keep`. */
  widths: number[];
}

/** A line's width in cli-table3's default frame: a space either side of each cell, a border between and around. */
export function lineWidth(widths: readonly number[]): number {
  return widths.reduce((sum, w) => sum + w + 3, 1);
}

/**
 * The widest layout that fits `width`: text columns are cut first (evenly, from the widest down, never
 * below their min); when even that is too wide, the next column of the drop order goes and the rest
 * are fitted again from their natural widths. When nothing is left to drop, the line may still be
 * wider than the terminal: the columns that stay are the ones worth a wrapped line.
 */
export function fitColumns(cols: readonly FitColumn[], width: number): Fit {
  const order = cols
    .map((c, i) => ({ i, drop: c.drop }))
    .filter((x): x is { i: number; drop: number } => x.drop !== undefined)
    .sort((a, b) => a.drop - b.drop || b.i - a.i)
    .map((x) => x.i);
  let keep = cols.map((_, i) => i);
  for (;;) {
    const widths = shrink(
      keep.map((i) => cols[i]!),
      width,
    );
    const next = order.shift();
    if (lineWidth(widths) <= width || next === undefined) return { keep, widths };
    keep = keep.filter((i) => i !== next);
  }
}

const floorOf = (c: FitColumn) => (c.min === undefined ? c.natural : Math.min(c.natural, c.min));

/** Every cuttable column cut to `level` (or to its floor, or left at its natural width when narrower). */
const atLevel = (cols: readonly FitColumn[], level: number) => cols.map((c) => Math.max(floorOf(c), Math.min(c.natural, level)));

/** Natural widths, or the cuttable columns cut to the highest common level at which the line fits. */
function shrink(cols: readonly FitColumn[], width: number): number[] {
  const natural = cols.map((c) => c.natural);
  if (lineWidth(natural) <= width) return natural;
  let lo = 0;
  let hi = Math.max(...natural);
  if (lineWidth(atLevel(cols, lo)) > width) return atLevel(cols, lo);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (lineWidth(atLevel(cols, mid)) <= width) lo = mid;
    else hi = mid - 1;
  }
  const widths = atLevel(cols, lo);
  // level lo + 1 does not fit, so fewer columns than are cut to lo share what is left: one each, left first
  let spare = width - lineWidth(widths);
  for (let i = 0; i < cols.length && spare > 0; i++) {
    if (widths[i] === lo && cols[i]!.natural > lo && cols[i]!.min !== undefined) {
      widths[i] = lo + 1;
      spare--;
    }
  }
  return widths;
}
