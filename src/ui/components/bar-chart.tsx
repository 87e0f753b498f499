/** One bar: its label (a day) and its stacked parts, in neuron. */
export type Bar = { label: string; parts: Array<{ series: string; value: bigint }> }

const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#ec4899', '#14b8a6', '#84cc16']
const HEIGHT = 160
const BAR = 32
const GAP = 16

/** A stacked bar chart drawn by hand in SVG: bars scale to the tallest; the legend names each series' colour. */
export function BarChart({ bars, title }: { bars: Bar[]; title: string }) {
  const series = [...new Set(bars.flatMap((b) => b.parts.map((p) => p.series)))]
  const colour = (s: string) => PALETTE[series.indexOf(s) % PALETTE.length]
  const totals = bars.map((b) => b.parts.reduce((sum, p) => sum + p.value, 0n))
  let max = 0n
  for (const total of totals) if (total > max) max = total
  // bigint to a 0..1 share without losing small values next to big ones: scaled to a million first.
  const share = (v: bigint) => (max === 0n ? 0 : Number((v * 1_000_000n) / max) / 1_000_000)
  const width = Math.max(bars.length * (BAR + GAP) + GAP, 120)
  return (
    <figure class="chart">
      <svg
        width={width}
        height={HEIGHT + 20}
        viewBox={`0 0 ${width} ${HEIGHT + 20}`}
        role="img"
        aria-label={title}
        data-testid="usage-chart"
      >
        <title>{title}</title>
        <line x1="0" y1={HEIGHT} x2={width} y2={HEIGHT} class="axis" />
        {bars.map((bar, i) => {
          const x = GAP + i * (BAR + GAP)
          let y = HEIGHT
          return (
            <g key={bar.label}>
              {bar.parts.map((part) => {
                const h = share(part.value) * (HEIGHT - 8)
                y -= h
                return (
                  <rect key={part.series} x={x} y={y} width={BAR} height={h} fill={colour(part.series)}>
                    <title>{`${bar.label} ${part.series}`}</title>
                  </rect>
                )
              })}
              <text x={x + BAR / 2} y={HEIGHT + 14} text-anchor="middle" class="tick">
                {bar.label.slice(5)}
              </text>
            </g>
          )
        })}
      </svg>
      <figcaption class="legend">
        {series.map((s) => (
          <span key={s}>
            <i style={{ background: colour(s) }} />
            {s}
          </span>
        ))}
      </figcaption>
    </figure>
  )
}
