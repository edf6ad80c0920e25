// The statistics of the WebRTC benchmark, one definition for both stores and the table.

/** Percentile `p` (0–100) of `xs` by nearest rank; null for no samples. */
export function percentile(xs, p) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
