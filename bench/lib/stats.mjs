// Summaries over a scenario's rounds: one run is noise on a shared machine, the median of
// several (with the range they spanned) is a figure that repeats.

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/** Median of the numbers in `values` (others skipped), or null when there are none. */
export function median(values) {
  const xs = values.filter(isNum).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** { median, min, max, n } of the numbers in `values`, or null when there are none. */
export function spread(values) {
  const xs = values.filter(isNum);
  if (xs.length === 0) return null;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

/** a / b, or null unless both are numbers and b is not 0. */
export function ratio(a, b) {
  return isNum(a) && isNum(b) && b !== 0 ? a / b : null;
}
