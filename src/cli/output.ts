/** JSON with bigints as decimal strings (neuron amounts never lose precision). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)
}

export function printJson(value: unknown): void {
  process.stdout.write(`${toJson(value)}\n`)
}

/** A plain text table: the first row is the header. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

/** "1d 2h 3m 4s" for a duration in seconds. */
export function formatDuration(seconds: bigint): string {
  if (seconds <= 0n) return 'unlocked'
  let s = seconds
  const parts: string[] = []
  for (const [unit, size] of [
    ['d', 86400n],
    ['h', 3600n],
    ['m', 60n],
  ] as const) {
    if (s >= size) {
      parts.push(`${s / size}${unit}`)
      s %= size
    }
  }
  if (s > 0n || parts.length === 0) parts.push(`${s}s`)
  return parts.join(' ')
}
