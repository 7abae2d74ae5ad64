// One rule for shrinking pictures (images and sampled video frames) under a pixel budget.

/** w×h scaled to at most maxPixels, aspect kept (each side at least 1); unchanged if it fits. */
export function fitWithin(w: number, h: number, maxPixels: number | undefined): { width: number; height: number } {
  if (maxPixels === undefined || w * h <= maxPixels) return { width: w, height: h };
  const f = Math.sqrt(maxPixels / (w * h));
  let width = Math.max(1, Math.floor(w * f));
  let height = Math.max(1, Math.floor(h * f));
  // Float rounding can leave one row over: trim the longer side.
  while (width * height > maxPixels && width * height > 1) {
    if (width >= height) width--;
    else height--;
  }
  return { width, height };
}
