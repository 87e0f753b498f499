/**
 * How fast this machine was during a run, so that reports from different days can be compared: the same fixed work
 * timed at the start of every run, and the CPU time the hypervisor gave to other guests meanwhile (steal). The
 * figures of a run are differences and ratios within that run; these say whether the machine under them changed.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

export type Calibration = {
  /** 20,000 JSON round trips of a chat request (parse, read, serialize): JavaScript work like a request path's. */
  jsonMs: number
  /** sha256 over 32 MiB in 64 KiB pieces: native work. */
  sha256Ms: number
}

const CHAT = JSON.stringify({
  model: 'meta-llama/Llama-3.1-8B-Instruct',
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Write one sentence about the sea.' },
  ],
  stream: true,
  max_tokens: 64,
})

/** The best of three rounds of each (the least disturbed), in ms. */
export function calibrate(): Calibration {
  const best = (fn: () => void) => {
    let min = Number.POSITIVE_INFINITY
    for (let round = 0; round < 3; round++) {
      const t = performance.now()
      fn()
      min = Math.min(min, performance.now() - t)
    }
    return Number(min.toFixed(1))
  }
  let sink = 0
  const jsonMs = best(() => {
    for (let i = 0; i < 20_000; i++) {
      const body = JSON.parse(CHAT) as { model: string; messages: unknown[] }
      sink += JSON.stringify({ ...body, n: i }).length + body.messages.length
    }
  })
  const piece = Buffer.alloc(64 * 1024, 7)
  const sha256Ms = best(() => {
    const hash = createHash('sha256')
    for (let i = 0; i < 512; i++) hash.update(piece)
    sink += hash.digest()[0]!
  })
  if (sink === -1) console.log(sink)
  return { jsonMs, sha256Ms }
}

/** Jiffies of all CPUs from /proc/stat (Linux), or undefined elsewhere. */
function cpuJiffies(): { total: number; steal: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
    const fields = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is counted in user already.
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0)
    return { total, steal: fields[7] ?? 0 }
  } catch {
    return undefined
  }
}

/** Starts counting steal; `stop()` answers the share of CPU time stolen since, in percent (null where unknown). */
export function watchSteal(): { stop(): number | null } {
  const start = cpuJiffies()
  return {
    stop() {
      const end = cpuJiffies()
      if (!start || !end || end.total === start.total) return null
      return Number(((100 * (end.steal - start.steal)) / (end.total - start.total)).toFixed(2))
    },
  }
}
