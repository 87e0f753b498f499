/** Summary of a sample of durations (ms): what the tables and the JSON report show. */
export type Dist = {
  n: number
  mean: number
  min: number
  p50: number
  p90: number
  p99: number
  max: number
}

const EMPTY: Dist = {
  n: 0,
  mean: Number.NaN,
  min: Number.NaN,
  p50: Number.NaN,
  p90: Number.NaN,
  p99: Number.NaN,
  max: Number.NaN,
}

/** Nearest-rank percentile of an ascending array. */
function rank(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

export function dist(samples: ArrayLike<number>): Dist {
  if (samples.length === 0) return { ...EMPTY }
  const sorted = Float64Array.from(samples).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    n: sorted.length,
    mean: sum / sorted.length,
    min: sorted[0]!,
    p50: rank(sorted, 50),
    p90: rank(sorted, 90),
    p99: rank(sorted, 99),
    max: sorted[sorted.length - 1]!,
  }
}

/** Rounds every number of a Dist for the report (µs precision is plenty). */
export function rounded(d: Dist, digits = 3): Dist {
  const r = (v: number) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v)
  return {
    n: d.n,
    mean: r(d.mean),
    min: r(d.min),
    p50: r(d.p50),
    p90: r(d.p90),
    p99: r(d.p99),
    max: r(d.max),
  }
}
