/**
 * Where the time of one call goes, hop by hop: the marks of every process on its path (bench/hop-trace.mjs, one
 * clock for all) lined up per call. Calls must not overlap (one at a time), so that a call's marks are the ones
 * between its client's `create` and its client's `headers`.
 */
import type { HopMark } from './hop-trace.mjs'
import { dist } from './stats.ts'

/** One proxy on the path: which process marks it, the port it serves on, the port it calls. */
export type Hop = { name: string; role: string; port: number; upstream: number }

/** A hop's share of a call, in µs: p50 over the calls. */
export type HopTimes = {
  /** The caller wrote the request's headers → this server parsed them (a wake-up, a read, HTTP parsing). */
  receive: number
  /** → it made its upstream request: its own request path (auth, body, validation, routing, signing...). */
  handle: number
  /** → the upstream request's headers were written. */
  send: number
  /** → the upstream's response headers arrived: everything behind this hop. */
  upstream: number
  /** → its own first write to its caller (headers and first bytes). */
  relay: number
  /** → its caller had the response headers. */
  deliver: number
}

export type HopReport = {
  /** Calls whose marks were all found. */
  calls: number
  /** Client's request made → its response headers, p50, µs. */
  totalUs: number
  hops: Record<string, HopTimes>
}

type Stamped = { ns: number; role: string; what: HopMark[1]; port: number }

const STEPS = ['receive', 'handle', 'send', 'upstream', 'relay', 'deliver'] as const

/** The median of spans in ns, in µs to 0.1. */
const p50Us = (ns: number[]) => Math.round(dist(ns).p50 / 100) / 10

/** A call's marks, by role, what and port: the first one of each. */
function index(call: Stamped[]): Map<string, number> {
  const at = new Map<string, number>()
  for (const m of call) {
    const key = `${m.role} ${m.what} ${m.port}`
    if (!at.has(key)) at.set(key, m.ns)
  }
  return at
}

/** One hop's six steps in one call (ns), or undefined when one of its marks is missing. */
function hopSteps(at: Map<string, number>, caller: string, hop: Hop): number[] | undefined {
  const t = [
    at.get(`${caller} sent ${hop.port}`),
    at.get(`${hop.role} receive ${hop.port}`),
    at.get(`${hop.role} create ${hop.upstream}`),
    at.get(`${hop.role} sent ${hop.upstream}`),
    at.get(`${hop.role} headers ${hop.upstream}`),
    at.get(`${hop.role} write ${hop.port}`),
    at.get(`${caller} headers ${hop.port}`),
  ]
  if (t.some((v) => v === undefined)) return undefined
  return STEPS.map((_, i) => t[i + 1]! - t[i]!)
}

/**
 * Lines up the marks of one target's calls. `marks` holds each process's marks by role; `client` is the load
 * generator's role, `target` the port it calls; `hops` the proxies from the client inwards (each calls the next).
 */
export function hopBreakdown(marks: Record<string, HopMark[]>, client: string, target: number, hops: Hop[]): HopReport {
  const all: Stamped[] = []
  for (const [role, list] of Object.entries(marks)) {
    for (const [ns, what, port] of list) all.push({ ns, role, what, port })
  }
  all.sort((a, b) => a.ns - b.ns)
  const totals: number[] = []
  const steps = hops.map(() => STEPS.map(() => [] as number[]))
  for (let i = 0; i < all.length; i++) {
    const start = all[i]!
    if (start.role !== client || start.what !== 'create' || start.port !== target) continue
    let end = i + 1
    while (
      end < all.length &&
      !(all[end]!.role === client && all[end]!.what === 'headers' && all[end]!.port === target)
    )
      end++
    if (end === all.length) break
    const at = index(all.slice(i, end + 1))
    const found = hops.map((hop, h) => hopSteps(at, h === 0 ? client : hops[h - 1]!.role, hop))
    if (found.some((f) => f === undefined)) continue
    totals.push(all[end]!.ns - start.ns)
    found.forEach((f, h) => {
      f!.forEach((v, s) => {
        steps[h]![s]!.push(v)
      })
    })
    i = end
  }
  return {
    calls: totals.length,
    totalUs: p50Us(totals),
    hops: Object.fromEntries(
      hops.map((hop, h) => [hop.name, Object.fromEntries(STEPS.map((s, k) => [s, p50Us(steps[h]![k]!)])) as HopTimes]),
    ),
  }
}

/** The gateway's own moments, in the order a forwarded stream passes them (receive and create bound them). */
const GATEWAY_STEPS = [
  ['receive', 'app'],
  ['app', 'auth'],
  ['auth', 'body'],
  ['body', 'validated'],
  ['validated', 'routed'],
  ['routed', 'create'],
  ['headers', 'relay'],
  ['relay', 'write'],
] as const

export type GatewayStepTimes = Record<
  `${(typeof GATEWAY_STEPS)[number][0]}→${(typeof GATEWAY_STEPS)[number][1]}`,
  number
>

/**
 * The gateway's *handle* and *relay*, step by step (µs, p50 over its calls): from the gateway process's marks alone,
 * HTTP moments and its `zg-gateway:step` moments (src/gateway/steps.ts), one call after another. `hop` says which
 * server port is the gateway's and which upstream is the provider's (other upstreams, the chain's RPC, are not).
 */
export function gatewaySteps(
  marks: HopMark[],
  hop: Pick<Hop, 'port' | 'upstream'>,
): { calls: number; steps: GatewayStepTimes } {
  const spans = GATEWAY_STEPS.map(() => [] as number[])
  let call: Map<string, number> | undefined
  let calls = 0
  const close = () => {
    if (!call) return
    const t = GATEWAY_STEPS.map(([a, b]) => [call!.get(a), call!.get(b)] as const)
    if (t.every(([a, b]) => a !== undefined && b !== undefined && b >= a)) {
      calls++
      for (const [i, [a, b]] of t.entries()) spans[i]!.push(b! - a!)
    }
    call = undefined
  }
  const ours = (what: HopMark[1], port: number) => {
    if (what === 'receive' || what === 'write') return port === hop.port
    if (what === 'create' || what === 'headers') return port === hop.upstream
    return what !== 'sent'
  }
  for (const [ns, what, port] of marks) {
    if (!ours(what, port)) continue
    if (what === 'receive') {
      close()
      call = new Map([['receive', ns]])
    } else if (call && !call.has(what)) call.set(what, ns)
    if (what === 'write') close()
  }
  close()
  return {
    calls,
    steps: Object.fromEntries(GATEWAY_STEPS.map(([a, b], i) => [`${a}→${b}`, p50Us(spans[i]!)])) as GatewayStepTimes,
  }
}
