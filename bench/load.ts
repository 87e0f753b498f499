/**
 * The load generator: its own process, bounded in requests and in time, stops by itself. Started by run.ts with
 * `fork` (config by IPC message, result by IPC message), or by hand:
 *
 *   node bench/load.ts '{"mode":"latency","targets":[…],"warmup":100,"requests":1000,"maxSeconds":30}'
 *
 * which prints the result as one JSON line. Modes:
 * - latency: sequential requests (concurrency 1), the targets interleaved (round robin, or in blocks) so drift hits
 *   all alike;
 * - throughput: `connections` workers against one target for `seconds`, after `warmupSeconds`;
 * - stream: SSE requests, `concurrency` at a time, the targets interleaved; time to response headers, to the
 *   first body byte, to the first content token, and the gaps between content tokens as they arrive.
 */
import { StringDecoder } from 'node:string_decoder'
import { Agent, request } from 'undici'
import { type HopMark, startHopTrace, stopHopTrace } from './hop-trace.mjs'
import { type Dist, dist, rounded } from './stats.ts'

export type Target = { name: string; url: string; headers: Record<string, string>; body: string }

export type LatencyConfig = {
  mode: 'latency'
  targets: Target[]
  warmup: number
  requests: number
  /** Idle time between two requests (default 0: back to back). */
  pauseMs?: number
  /**
   * Blocks instead of a round robin: `size` requests to one target, then `size` to the next, and so on until each has
   * had `requests`; each block begins with `warmup` unmeasured requests, after `pauseMs` of quiet for what the
   * previous target left to do (a gateway's bookkeeping). The machine's drift over a run then weighs on every
   * target alike, as in a round robin, while no target's calls run amid another's leftover work.
   */
  blocks?: { size: number; warmup: number; pauseMs: number }
  maxSeconds: number
}
export type ThroughputConfig = {
  mode: 'throughput'
  target: Target
  connections: number
  warmupSeconds: number
  seconds: number
}
export type StreamConfig = {
  mode: 'stream'
  targets: Target[]
  concurrency: number
  /** Streams measured per target, after `warmup` unmeasured ones per target. */
  streams: number
  warmup: number
  /** Worker i starts i·staggerMs/concurrency ms late: streams then start steadily rather than in bursts. */
  staggerMs: number
  /** Idle time of a worker between two streams (default 0). */
  pauseMs?: number
  maxSeconds: number
  /** Stamp the measured streams' HTTP moments (bench/hop-trace.mjs) and return the marks. */
  trace?: boolean
}
export type LoadConfig = LatencyConfig | ThroughputConfig | StreamConfig

export type LatencyResult = {
  name: string
  latencyMs: Dist
  errors: number
  errorSample?: string
}
export type ThroughputResult = {
  name: string
  connections: number
  seconds: number
  requests: number
  rps: number
  /** Every request that succeeded, warm-up and drain included (for CPU per request). */
  completedTotal: number
  /** CPU time of this load generator over the whole run, ms. */
  loadCpuMs: number
  errors: number
  errorSample?: string
  latencyMs: Dist
}
export type StreamResult = {
  name: string
  started: number
  completed: number
  errors: number
  errorSample?: string
  /** Request sent → response headers. */
  headersMs: Dist
  /** Request sent → first body byte (the role chunk). */
  ttfbMs: Dist
  /** Request sent → first content token. */
  firstTokenMs: Dist
  /** Arrival gaps between consecutive content tokens, over all streams. */
  gapMs: Dist
  /** Request sent → end of stream. */
  totalMs: Dist
  tokensPerStream: number
}
export type LoadResult =
  | { mode: 'latency'; truncated: boolean; wallSeconds: number; results: LatencyResult[] }
  | { mode: 'throughput'; wallSeconds: number; result: ThroughputResult }
  | { mode: 'stream'; truncated: boolean; wallSeconds: number; results: StreamResult[]; marks?: HopMark[] }

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const sample = (err: unknown) => String((err as Error)?.message ?? err).slice(0, 300)

async function post(target: Target, dispatcher: Agent, signal?: AbortSignal): Promise<number> {
  const started = performance.now()
  const res = await request(target.url, {
    method: 'POST',
    headers: target.headers,
    body: target.body,
    dispatcher,
    signal,
  })
  const body = await res.body.arrayBuffer()
  const ms = performance.now() - started
  if (res.statusCode !== 200) {
    throw new Error(`HTTP ${res.statusCode}: ${Buffer.from(body).toString('utf8').slice(0, 200)}`)
  }
  return ms
}

async function latency(cfg: LatencyConfig): Promise<LoadResult> {
  const dispatcher = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: 60_000 })
  const started = performance.now()
  const deadline = started + cfg.maxSeconds * 1000
  const samples = cfg.targets.map(() => [] as number[])
  const errors = cfg.targets.map(() => 0)
  const errorSamples: Array<string | undefined> = cfg.targets.map(() => undefined)
  const measure = async (t: number, measured: boolean) => {
    if (cfg.pauseMs) await sleep(cfg.pauseMs)
    try {
      const ms = await post(cfg.targets[t]!, dispatcher)
      if (measured) samples[t]!.push(ms)
    } catch (err) {
      errors[t]!++
      errorSamples[t] ??= sample(err)
    }
  }
  const inBlocks = async ({ size, warmup, pauseMs }: NonNullable<LatencyConfig['blocks']>) => {
    for (let i = 0; i < cfg.warmup; i++) for (let t = 0; t < cfg.targets.length; t++) await measure(t, false)
    for (let done = 0; done < cfg.requests; done += size) {
      for (let t = 0; t < cfg.targets.length; t++) {
        if (performance.now() > deadline) return true
        await sleep(pauseMs)
        for (let i = 0; i < warmup; i++) await measure(t, false)
        for (let i = 0; i < Math.min(size, cfg.requests - done); i++) await measure(t, true)
      }
    }
    return false
  }
  const roundRobin = async () => {
    for (let i = 0; i < cfg.warmup + cfg.requests; i++) {
      if (performance.now() > deadline) return true
      // Rotate the order every round: no target is always the one right after another.
      for (let k = 0; k < cfg.targets.length; k++) await measure((i + k) % cfg.targets.length, i >= cfg.warmup)
    }
    return false
  }
  const truncated = cfg.blocks ? await inBlocks(cfg.blocks) : await roundRobin()
  await dispatcher.close()
  return {
    mode: 'latency',
    truncated,
    wallSeconds: (performance.now() - started) / 1000,
    results: cfg.targets.map((t, i) => ({
      name: t.name,
      latencyMs: rounded(dist(samples[i]!)),
      errors: errors[i]!,
      ...(errorSamples[i] ? { errorSample: errorSamples[i] } : {}),
    })),
  }
}

async function throughput(cfg: ThroughputConfig): Promise<LoadResult> {
  const dispatcher = new Agent({ connections: cfg.connections, pipelining: 1, keepAliveTimeout: 60_000 })
  const started = performance.now()
  const windowStart = started + cfg.warmupSeconds * 1000
  const windowEnd = windowStart + cfg.seconds * 1000
  const abort = new AbortController()
  // Whatever happens, the run ends: requests still out 5 s after the window are aborted.
  const guard = setTimeout(() => abort.abort(), windowEnd - started + 5_000)
  const samples: number[] = []
  let errors = 0
  let completedTotal = 0
  let errorSample: string | undefined
  const cpu = process.cpuUsage()
  const worker = async () => {
    while (performance.now() < windowEnd && !abort.signal.aborted) {
      const sent = performance.now()
      try {
        const ms = await post(cfg.target, dispatcher, abort.signal)
        completedTotal++
        const done = performance.now()
        if (sent >= windowStart && done <= windowEnd) samples.push(ms)
      } catch (err) {
        if (sent >= windowStart) {
          errors++
          errorSample ??= sample(err)
        }
      }
    }
  }
  await Promise.all(Array.from({ length: cfg.connections }, worker))
  clearTimeout(guard)
  await dispatcher.close()
  // Requests sent in the window and finished in it; the first and last few ms of the window are a little thinner,
  // which under-counts by at most one round trip per connection.
  return {
    mode: 'throughput',
    wallSeconds: (performance.now() - started) / 1000,
    result: {
      name: cfg.target.name,
      connections: cfg.connections,
      seconds: cfg.seconds,
      requests: samples.length,
      rps: samples.length / cfg.seconds,
      completedTotal,
      loadCpuMs: (() => {
        const used = process.cpuUsage(cpu)
        return (used.user + used.system) / 1000
      })(),
      errors,
      ...(errorSample ? { errorSample } : {}),
      latencyMs: rounded(dist(samples)),
    },
  }
}

type StreamSample = {
  headers: number
  ttfb: number
  firstToken: number
  total: number
  gaps: number[]
  tokens: number
}

const CONTENT_DELTA = '"delta":{"content":'

async function oneStream(target: Target, dispatcher: Agent, signal: AbortSignal): Promise<StreamSample> {
  const started = performance.now()
  const res = await request(target.url, {
    method: 'POST',
    headers: target.headers,
    body: target.body,
    dispatcher,
    signal,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  })
  const headers = performance.now() - started
  if (res.statusCode !== 200) {
    throw new Error(`HTTP ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}`)
  }
  const decoder = new StringDecoder('utf8')
  let pending = ''
  let ttfb = Number.NaN
  let firstToken = Number.NaN
  let lastToken = Number.NaN
  let tokens = 0
  let done = false
  let error: string | undefined
  const gaps: number[] = []
  for await (const chunk of res.body) {
    const now = performance.now()
    if (Number.isNaN(ttfb)) ttfb = now - started
    pending += decoder.write(chunk as Buffer)
    for (let end = pending.indexOf('\n\n'); end !== -1; end = pending.indexOf('\n\n')) {
      const event = pending.slice(0, end)
      pending = pending.slice(end + 2)
      if (event.startsWith(':')) continue
      if (event.includes(CONTENT_DELTA)) {
        if (tokens === 0) firstToken = now - started
        else gaps.push(now - lastToken)
        lastToken = now
        tokens++
      } else if (event === 'data: [DONE]') done = true
      else if (event.includes('"error"')) error ??= event.slice(0, 200)
    }
  }
  const total = performance.now() - started
  if (error) throw new Error(`error event: ${error}`)
  if (!done) throw new Error('the stream ended without data: [DONE]')
  return { headers, ttfb, firstToken, total, gaps, tokens }
}

async function streams(cfg: StreamConfig): Promise<LoadResult> {
  const dispatcher = new Agent({
    connections: cfg.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  })
  const started = performance.now()
  const abort = new AbortController()
  let truncated = false
  const guard = setTimeout(() => {
    truncated = true
    abort.abort()
  }, cfg.maxSeconds * 1000)
  // Every target gets its streams interleaved with the others' in one queue.
  const jobs: Array<{ t: number; measured: boolean }> = []
  for (let r = 0; r < cfg.warmup + cfg.streams; r++) {
    for (let t = 0; t < cfg.targets.length; t++) jobs.push({ t, measured: r >= cfg.warmup })
  }
  const per = cfg.targets.map(() => ({
    started: 0,
    samples: [] as StreamSample[],
    errors: 0,
    errorSample: undefined as string | undefined,
  }))
  let next = 0
  let tracing = false
  const workers = Math.min(cfg.concurrency, jobs.length)
  const worker = async (_: unknown, i: number) => {
    if (cfg.staggerMs > 0) await sleep((i * cfg.staggerMs) / workers)
    while (next < jobs.length && !abort.signal.aborted) {
      const job = jobs[next++]!
      if (cfg.trace && job.measured && !tracing) {
        tracing = true
        startHopTrace()
      }
      const acc = per[job.t]!
      if (cfg.pauseMs) await sleep(cfg.pauseMs)
      if (job.measured) acc.started++
      try {
        const s = await oneStream(cfg.targets[job.t]!, dispatcher, abort.signal)
        if (job.measured) acc.samples.push(s)
      } catch (err) {
        if (job.measured) {
          acc.errors++
          acc.errorSample ??= sample(err)
        }
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, worker))
  const marks = tracing ? stopHopTrace() : undefined
  clearTimeout(guard)
  await dispatcher.close()
  return {
    mode: 'stream',
    ...(marks ? { marks } : {}),
    truncated,
    wallSeconds: (performance.now() - started) / 1000,
    results: cfg.targets.map((t, i) => {
      const acc = per[i]!
      const s = acc.samples
      return {
        name: t.name,
        started: acc.started,
        completed: s.length,
        errors: acc.errors,
        ...(acc.errorSample ? { errorSample: acc.errorSample } : {}),
        headersMs: rounded(dist(s.map((x) => x.headers))),
        ttfbMs: rounded(dist(s.map((x) => x.ttfb))),
        firstTokenMs: rounded(dist(s.map((x) => x.firstToken))),
        gapMs: rounded(dist(s.flatMap((x) => x.gaps))),
        totalMs: rounded(dist(s.map((x) => x.total))),
        tokensPerStream: s.length ? s.reduce((a, x) => a + x.tokens, 0) / s.length : 0,
      }
    }),
  }
}

export function runLoad(cfg: LoadConfig): Promise<LoadResult> {
  switch (cfg.mode) {
    case 'latency':
      return latency(cfg)
    case 'throughput':
      return throughput(cfg)
    case 'stream':
      return streams(cfg)
  }
}

async function main() {
  // A hard ceiling, whatever the config says: the load generator never outlives a run.
  const ceiling = setTimeout(() => {
    console.error('load: hard time limit reached, exiting')
    process.exit(3)
  }, 600_000)
  ceiling.unref()
  if (process.send) {
    // Forked by run.ts: one config in, one result out, then exit. A vanished parent ends this process too.
    process.once('disconnect', () => process.exit(2))
    process.once('message', async (cfg: LoadConfig) => {
      try {
        const result = await runLoad(cfg)
        process.send!({ ok: true, result }, () => process.exit(0))
      } catch (err) {
        process.send!({ ok: false, error: (err as Error).stack ?? String(err) }, () => process.exit(1))
      }
    })
    process.send({ ready: true })
    return
  }
  const arg = process.argv[2]
  if (!arg) {
    console.error("usage: node bench/load.ts '<config json>'")
    process.exit(64)
  }
  const result = await runLoad(JSON.parse(arg) as LoadConfig)
  console.log(JSON.stringify(result))
}

if (import.meta.main) await main()
