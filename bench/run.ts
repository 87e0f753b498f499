/**
 * `npm run bench`: the gateway's and the provider node's overhead, measured side by side in one run (issue 5).
 *
 * This process runs the dev stack (anvil with the real contracts, the dev backend, the provider nodes, all with
 * session tokens, admission, metering, signing, durable usage records and the settlement job on); the gateway runs
 * in a child process of its own (bench/gateway-process.mjs) so its RSS and CPU profile are its own; every
 * measurement's load comes from another child (bench/load.ts) that stops by itself. A bare Node proxy
 * (bench/bare-proxy.ts) in front of the same node gives the floor: what one more Node HTTP hop costs here; byte
 * relays without HTTP (bench/byte-relay.c, compiled when there is a C compiler, and bench/byte-relay.mjs) give the
 * floor under that: what one more process on the path costs. A traced
 * pass (bench/hop-trace.mjs, bench/hops.ts) splits the one-at-a-time first byte hop by hop, process by process. Prints a
 * table and writes bench/results/report-<time>.json.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import type { Address, Hex } from 'viem'
import { type ChatSignature, sha256Hex, verifyResponseSignature } from '../src/attestation/response-signature.ts'
import { verifyDelivery } from '../src/attestation/response-verifier.ts'
import { createSessionToken } from '../src/billing/session-token.ts'
import { getAccount } from '../src/chain/actions/get-account.ts'
import { createZgClients } from '../src/chain/clients.ts'
import { secp256k1Backend } from '../src/chain/secp256k1.ts'
import { anvilAccount, anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { DEV_API_KEY, DEV_WALLET_INDEX, type DevStack, startDevStack } from '../src/devnet/dev-stack.ts'
import { DeliveryVerifier } from '../src/gateway/delivery-verifier.ts'
import { type ByteRelay, compileByteRelay, NODE_BYTE_RELAY, startByteRelay } from './byte-relays.ts'
import { type HopMark, startHopTrace, stopHopTrace } from './hop-trace.mjs'
import { type GatewayStepTimes, gatewaySteps, type Hop, type HopReport, hopBreakdown } from './hops.ts'
import type { LatencyResult, LoadConfig, LoadResult, StreamResult, Target, ThroughputResult } from './load.ts'
import { calibrate, watchSteal } from './machine.ts'
import { type CpuProfile, type ProfileSummary, summarizeProfile } from './profile.ts'
import { scalingSection } from './scaling.ts'
import { type Dist, dist, rounded } from './stats.ts'
import {
  quoteVerificationCost,
  receiptInputs,
  responseCpu,
  startVerificationGateway,
  type VerificationGateway,
} from './verification.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(HERE)
const USAGE = `usage: npm run bench -- [options]
  --quick    small counts (about 50 s), to try the harness
  --profile  CPU profiles of the gateway and the provider node under the throughput load (bench/results/*.cpuprofile),
             summarized in the output and the report
  --strict   exit with status 1 when a target is missed
  --keep     keep the temporary data dir`
const args = new Set(process.argv.slice(2))
for (const a of args) {
  if (!['--quick', '--profile', '--strict', '--keep', '--help'].includes(a)) {
    console.error(`unknown option ${a}\n${USAGE}`)
    process.exit(64)
  }
}
if (args.has('--help')) {
  console.log(USAGE)
  process.exit(0)
}
const QUICK = args.has('--quick')
const PROFILE = args.has('--profile')
const STRICT = args.has('--strict')
const KEEP = args.has('--keep')
const FROM_SOURCE = process.env.ZG_BENCH_FROM_SOURCE === '1'

/** Token pace of the streaming sections: 20 ms a token, 50 tokens/s, like a mid-size model on one GPU. */
const TOKEN_DELAY_MS = 20

const P = QUICK
  ? {
      latency: { warmup: 50, requests: 300, block: 50 },
      spaced: { warmup: 20, requests: 100, block: 25, pauseMs: 10 },
      throughput: { warmupSeconds: 0.5, seconds: 2, rounds: 1 },
      stream: { concurrency: 15, warmup: 2, streams: 30 },
      ttfb: { warmup: 5, streams: 30 },
      many: 1000,
      verifyN: 200,
    }
  : {
      latency: { warmup: 200, requests: 2000, block: 100 },
      spaced: { warmup: 50, requests: 500, block: 50, pauseMs: 10 },
      throughput: { warmupSeconds: 1, seconds: 4, rounds: 2 },
      stream: { concurrency: 30, warmup: 5, streams: 150 },
      ttfb: { warmup: 10, streams: 100 },
      many: 1000,
      verifyN: 1000,
    }
const CONNECTIONS = 50

/** What run.ts sends bench/gateway-process.mjs first. */
type GatewayProcessConfig = {
  dataDir: string
  /** The dev wallet's key (anvil account 1: a well-known test key). */
  walletKey: Hex
  devKey: string
  /** The scaling section's instances: their own data dir under dataDir, a Postgres store, the admin API. */
  gatewayDir?: string
  store?: string
  adminKey?: string
}

/** What bench/gateway-process.mjs answers. */
type GatewayProcessMessage =
  | { ready: true; url: string; pid: number }
  | { memory: NodeJS.MemoryUsage }
  | { profiling: true }
  | { profileWritten: string }
  | { tracing: true }
  | { marks: HopMark[] }
  | { error: string }

const started = performance.now()
const loadAtStart = loadavg().map((v) => Number(v.toFixed(2)))
const steal = watchSteal()
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`
const say = (line: string) => console.error(`[bench ${elapsed()}] ${line}`)

// ---------------------------------------------------------------------------------------------------------------
// Children

/** Runs one measurement in a load-generator process of its own; it stops by itself, or is killed past `limitMs`. */
function runLoadProcess(cfg: LoadConfig, limitMs: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(join(HERE, 'load.ts'), [], {
      execPath: process.execPath,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    })
    let stderr = ''
    child.stderr!.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`load generator still running after ${limitMs} ms`))
    }, limitMs)
    child.on('message', (m: { ready?: boolean; ok?: boolean; result?: LoadResult; error?: string }) => {
      if (m.ready) child.send(cfg)
      else if (m.ok) resolve(m.result!)
      else reject(new Error(`load generator failed: ${m.error}`))
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code !== 0) reject(new Error(`load generator exited with ${code}: ${stderr.slice(-2000)}`))
    })
  })
}

type Child = {
  url: string
  pid: number
  send(m: object): Promise<void>
  /** Starts marking its HTTP traffic (bench/hop-trace.mjs); `traceStop` returns the marks. */
  traceStart(): Promise<void>
  traceStop(): Promise<HopMark[]>
  stop(): void
}

/** Sends `message` to a child and waits for the first answer that `pick` accepts. */
function askChild<M, T>(child: ChildProcess, message: object, pick: (m: M) => T | undefined): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: M) => {
      const value = pick(m)
      if (value === undefined) return
      child.off('message', on)
      resolve(value)
    }
    child.on('message', on)
    child.send(message)
  })
}

/** The reference proxy (bench/bare-proxy.ts) in a process of its own; `send({target})` points it at an origin. */
async function startBareProxy(): Promise<Child> {
  const child = fork(join(HERE, 'bare-proxy.ts'), [], {
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let target: string | undefined
  let ready: { url: string; pid: number } | undefined
  const waiters: Array<() => void> = []
  child.on('message', (m: { ready?: boolean; url: string; pid: number }) => {
    if (m.ready) {
      ready = m
      for (const w of waiters.splice(0)) w()
    }
  })
  type Answer = { tracing?: true; marks?: HopMark[] }
  return {
    get url() {
      return ready?.url ?? ''
    },
    get pid() {
      return ready?.pid ?? 0
    },
    async send(m: { target?: string }) {
      if (target !== undefined && m.target !== target) throw new Error('the bare proxy serves one target')
      if (ready) return
      target = m.target
      child.send(m)
      await new Promise<void>((resolve) => waiters.push(resolve))
    },
    traceStart: () => askChild(child, { traceStart: true }, (m: Answer) => m.tracing).then(() => undefined),
    traceStop: () => askChild(child, { traceStop: true }, (m: Answer) => m.marks),
    stop() {
      child.kill('SIGTERM')
    },
  }
}

type GatewayChild = {
  url: string
  pid: number
  /** Last lines of its log. */
  log: string[]
  memory(): Promise<NodeJS.MemoryUsage>
  profileStart(): Promise<void>
  profileStop(file: string): Promise<void>
  traceStart(): Promise<void>
  traceStop(): Promise<HopMark[]>
  stop(): Promise<void>
}

async function startGatewayChild(
  dataDir: string,
  opts: { cpuProfDir?: string; gatewayDir?: string; store?: string; adminKey?: string } = {},
): Promise<GatewayChild> {
  const execArgv = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`, '--cpu-prof-interval=200'] : []
  const child: ChildProcess = fork(join(HERE, 'gateway-process.mjs'), [], {
    execPath: process.execPath,
    execArgv,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  })
  const log: string[] = []
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (d: string) => {
    log.push(...d.split('\n').filter(Boolean))
    if (log.length > 200) log.splice(0, log.length - 200)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const ready = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the gateway process did not start within 60 s')), 60_000)
    child.on('message', (m: GatewayProcessMessage) => {
      if ('ready' in m) {
        clearTimeout(timer)
        resolve(m)
      } else if ('error' in m) {
        clearTimeout(timer)
        reject(new Error(`the gateway process failed to start: ${m.error}`))
      }
    })
    child.once('exit', (code) => reject(new Error(`the gateway process exited with ${code}: ${log.join('\n')}`)))
    child.send({
      dataDir,
      walletKey: anvilPrivateKey(DEV_WALLET_INDEX),
      devKey: DEV_API_KEY,
      gatewayDir: opts.gatewayDir,
      store: opts.store,
      adminKey: opts.adminKey,
    } satisfies GatewayProcessConfig)
  })
  /** Sends `message` and waits for the first answer that `pick` accepts. */
  const ask = <T>(message: object, pick: (m: GatewayProcessMessage) => T | undefined) => askChild(child, message, pick)
  return {
    ...ready,
    log,
    memory: () => ask({ memory: true }, (m) => ('memory' in m ? m.memory : undefined)),
    profileStart: () => ask({ profileStart: true }, (m) => ('profiling' in m ? true : undefined)).then(() => undefined),
    profileStop: (file) =>
      ask({ profileStop: file }, (m) => ('profileWritten' in m ? m.profileWritten : undefined)).then(() => undefined),
    traceStart: () => ask({ traceStart: true }, (m) => ('tracing' in m ? true : undefined)).then(() => undefined),
    traceStop: () => ask({ traceStop: true }, (m) => ('marks' in m ? m.marks : undefined)),
    async stop() {
      if (child.exitCode !== null) return
      child.send({ stop: true })
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** CPU time (user + system, ms) of each thread of a process, summed by thread name (MainThread, WorkerThread, …). */
function threadCpuMs(pid: number): Record<string, number> {
  const out: Record<string, number> = {}
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime and stime are fields 14 and 15 of stat; here, after "pid (comm) ", at 11 and 12. Ticks of 10 ms.
      out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10
    } catch {
      // the thread is gone
    }
  }
  return out
}

/** Processes whose CPU the throughput rounds account for, by role (this process = the stack). */
const cpuWatched: Record<string, number> = { 'stack (node + backend)': process.pid }

function cpuSnapshot(): Record<string, Record<string, number>> {
  return Object.fromEntries(Object.entries(cpuWatched).map(([role, pid]) => [role, threadCpuMs(pid)]))
}

/** CPU µs per request, by process and by thread name, between two snapshots. */
function cpuPerRequest(
  before: ReturnType<typeof cpuSnapshot>,
  after: ReturnType<typeof cpuSnapshot>,
  requests: number,
) {
  const out: Record<string, Record<string, number>> = {}
  for (const [role, threads] of Object.entries(after)) {
    const per: Record<string, number> = {}
    let total = 0
    for (const [name, ms] of Object.entries(threads)) {
      const d = ms - (before[role]?.[name] ?? 0)
      if (d <= 0) continue
      per[name] = Math.round((1000 * d) / requests)
      total += d
    }
    out[role] = { total: Math.round((1000 * total) / requests), ...per }
  }
  return out
}

/**
 * Waits until the watched processes are idle (under 5% of a core over 250 ms, at most `limitMs`): work left over
 * from one measurement, such as the gateway's verification backlog, must not weigh on the next. Returns the wait.
 */
async function quiesce(limitMs = 15_000): Promise<number> {
  const t0 = performance.now()
  const total = () =>
    Object.values(cpuWatched).reduce(
      (a, pid) => a + (pid === process.pid ? 0 : Object.values(threadCpuMs(pid)).reduce((x, y) => x + y, 0)),
      0,
    )
  for (;;) {
    const before = total()
    await sleep(250)
    if (total() - before <= 0.05 * 250 || performance.now() - t0 > limitMs) break
  }
  return Math.round(performance.now() - t0)
}

/** VmRSS (now) and VmHWM (peak since start) of a process, in MB. */
function memOf(pid: number): { rssMB: number; hwmMB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN)
  return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the highest value seen. */
function watchRss(pid: number, everyMs = 20): { stop(): number } {
  let peak = 0
  const tick = () => {
    try {
      peak = Math.max(peak, memOf(pid).rssMB)
    } catch {
      // the process is gone
    }
  }
  tick()
  const timer = setInterval(tick, everyMs)
  return {
    stop() {
      clearInterval(timer)
      tick()
      return peak
    },
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------------------------------
// The stack

const stackLog: string[] = []

async function startStack(dataDir: string, tokenDelayMs: number): Promise<DevStack> {
  const t = performance.now()
  const stack = await startDevStack({
    dataDir,
    port: 0,
    chainPort: 0,
    tokenDelayMs,
    log: (line) => {
      stackLog.push(line)
      if (stackLog.length > 500) stackLog.splice(0, stackLog.length - 500)
    },
  })
  // The dev stack also starts a gateway in this process: the bench runs its own in a child, so this one goes.
  await stack.gateway.close()
  say(`dev stack up (token pace ${tokenDelayMs} ms) in ${Math.round(performance.now() - t)} ms`)
  return stack
}

const chatBody = (stream: boolean) =>
  JSON.stringify({
    model: DEV_CHAT_MODEL,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Write a few sentences about measuring the latency of a proxy.' },
    ],
    max_tokens: 32,
    ...(stream ? { stream: true } : {}),
  })

type Paths = {
  backend: Target
  node: Target
  gateway: Target
  /** Reference: the thinnest Node proxy in front of the same node (bench/bare-proxy.ts). */
  bare: Target
  /**
   * Reference: byte relays in front of the same node (bench/byte-relay.c, when there is a C compiler, and
   * bench/byte-relay.mjs): what one more process on the path costs before any HTTP.
   */
  relays: Target[]
  provider: Address
  nodeUrl: string
  signer: Address
  /** Runs the measured node's settlement job now; what it found unsettled, and how it went. */
  settle(): Promise<SettleInfo>
  /** The measured node's records of the dev wallet not settled yet (its admission sums them on every request). */
  unsettled(): number
}

type SettleInfo = { unsettledBefore: number; unsettledAfter: number; ms: number; outcome: string }

/** Calls `target` once with its body; its response headers, or an error with the answer when it is not a 200. */
async function answers(target: Target) {
  const res = await request(target.url, { method: 'POST', headers: target.headers, body: target.body })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`${target.name} answered ${res.statusCode}: ${text}`)
  return res.headers
}

/**
 * The three paths to the same model, for one body: the backend itself, the provider node the gateway picks (with a
 * session token of the dev wallet), and the gateway. Checks each one answers, and that the node signs.
 */
async function pathsFor(
  stack: DevStack,
  gateway: GatewayChild,
  bare: Child,
  relays: (nodePort: number) => Promise<ByteRelay[]>,
  stream: boolean,
): Promise<Paths> {
  const body = chatBody(stream)
  const json = { 'content-type': 'application/json' }
  const gatewayTarget: Target = {
    name: 'gateway',
    url: `${gateway.url}/v1/chat/completions`,
    headers: { ...json, authorization: `Bearer ${DEV_API_KEY}` },
    body,
  }
  const provider = String((await answers(gatewayTarget))['x-zg-provider']) as Address
  const entry = stack.nodes.find((n) => n.address.toLowerCase() === provider.toLowerCase())
  if (!entry) throw new Error(`the gateway used provider ${provider}, which is not one of the dev stack's nodes`)

  const wallet = anvilAccount(DEV_WALLET_INDEX)
  const clients = createZgClients({ network: stack.devnet.network, account: wallet })
  const account = await getAccount(clients, { user: wallet.address, provider: entry.address })
  const { token } = await createSessionToken({
    account: wallet,
    provider: entry.address,
    generation: account?.generation ?? 0n,
  })
  const nodeTarget: Target = {
    name: 'provider node',
    url: `${entry.node.url}/v1/proxy/chat/completions`,
    headers: { ...json, authorization: `Bearer ${token}` },
    body,
  }
  const backendTarget: Target = {
    name: 'backend',
    url: `${stack.backend.url}/v1/chat/completions`,
    headers: json,
    body,
  }
  await answers(backendTarget)
  if (!(await answers(nodeTarget))['zg-res-key']) throw new Error('the provider node did not sign (no ZG-Res-Key)')
  const unsettled = () => entry.node.store.unsettledRecords(wallet.address).length
  await bare.send({ target: entry.node.url })
  const bareTarget: Target = { ...nodeTarget, name: 'bare proxy', url: `${bare.url}/v1/proxy/chat/completions` }
  await answers(bareTarget)
  const relayTargets: Target[] = []
  for (const relay of await relays(Number(new URL(entry.node.url).port))) {
    const t: Target = {
      ...nodeTarget,
      name: relay.name,
      url: `http://127.0.0.1:${relay.port}/v1/proxy/chat/completions`,
    }
    await answers(t)
    relayTargets.push(t)
  }
  return {
    backend: backendTarget,
    bare: bareTarget,
    relays: relayTargets,
    node: nodeTarget,
    gateway: gatewayTarget,
    provider: entry.address,
    nodeUrl: entry.node.url,
    signer: entry.node.signer.address,
    unsettled,
    async settle() {
      const unsettledBefore = unsettled()
      const t = performance.now()
      let outcome: string
      try {
        const outcomes = await entry.node.settle()
        outcome = outcomes.map((o) => `${o.status} (${o.records} records)`).join(', ') || 'nothing to settle'
      } catch (err) {
        outcome = `failed: ${(err as Error).message.split('\n')[0]}`
      }
      return { unsettledBefore, unsettledAfter: unsettled(), ms: Math.round(performance.now() - t), outcome }
    },
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sections

/**
 * Sequential requests, the four paths in turns of `block` requests each (each turn after a quiet pause and a few
 * unmeasured calls), the node settled once before: the machine's drift over the section then weighs on every path
 * alike, which one path after the other did not (on a busy day the bare proxy measured +0.07 ms over the node back to
 * back and +1.8 ms 10 ms apart, minutes later), while the gateway's off-path work (signature check, usage records)
 * still finishes in the pause after its own turn rather than amid another path's calls.
 */
async function latencySection(
  paths: Paths,
  opts: { warmup: number; requests: number; block: number; pauseMs?: number },
) {
  const { warmup, requests, block, pauseMs } = opts
  say(
    `latency: ${requests} sequential requests per path (+${warmup} warm-up), in turns of ${block} per path` +
      (pauseMs ? `, ${pauseMs} ms apart` : ', back to back'),
  )
  const order: Array<[string, Target]> = [
    ['backend', paths.backend],
    ['node', paths.node],
    ['gateway', paths.gateway],
    ['bare', paths.bare],
    ...paths.relays.map((t): [string, Target] => [t.name, t]),
  ]
  await quiesce()
  const settled = await paths.settle()
  const r = await runLoadProcess(
    {
      mode: 'latency',
      targets: order.map(([, target]) => target),
      warmup,
      requests,
      ...(pauseMs ? { pauseMs } : {}),
      blocks: { size: block, warmup: 5, pauseMs: 50 },
      maxSeconds: 240,
    },
    300_000,
  )
  if (r.mode !== 'latency') throw new Error('unexpected load result')
  const out: Record<string, LatencyResult> = {}
  for (const [i, [key, target]] of order.entries()) {
    const res = r.results[i]!
    out[key] = res
    say(`  ${target.name}: p50 ${res.latencyMs.p50} ms, p99 ${res.latencyMs.p99} ms, ${res.errors} errors`)
  }
  return {
    backend: out.backend!,
    node: out.node!,
    gateway: out.gateway!,
    bare: out.bare!,
    relays: paths.relays.map((t) => out[t.name]!),
    wallSeconds: r.wallSeconds,
    settled,
    unsettledAfter: paths.unsettled(),
  }
}

type Round = ThroughputResult & {
  settled?: SettleInfo
  /** How long the processes took to go idle after the previous measurement (the gateway's backlog). */
  quietAfterMs: number
  cpuUsPerRequest: Record<string, Record<string, number>>
}

async function throughputRound(target: Target, settle?: () => Promise<SettleInfo>): Promise<Round> {
  const quietAfterMs = await quiesce()
  const settled = await settle?.()
  const { warmupSeconds, seconds } = P.throughput
  const before = cpuSnapshot()
  const r = await runLoadProcess(
    { mode: 'throughput', target, connections: CONNECTIONS, warmupSeconds, seconds },
    (warmupSeconds + seconds + 30) * 1000,
  )
  if (r.mode !== 'throughput') throw new Error('unexpected load result')
  const cpu = cpuPerRequest(before, cpuSnapshot(), r.result.completedTotal)
  cpu['load generator'] = { total: Math.round((1000 * r.result.loadCpuMs) / r.result.completedTotal) }
  say(
    `  ${target.name}: ${r.result.rps.toFixed(0)} req/s, p50 ${r.result.latencyMs.p50} ms, ${r.result.errors} errors; ` +
      `CPU µs/request: ${Object.entries(cpu)
        .filter(([, v]) => (v.total ?? 0) > 0)
        .map(([k, v]) => `${k} ${v.total}`)
        .join(', ')}`,
  )
  return { ...r.result, ...(settled ? { settled } : {}), quietAfterMs, cpuUsPerRequest: cpu }
}

function combineRounds(rounds: Round[]) {
  const requests = rounds.reduce((a, r) => a + r.requests, 0)
  const seconds = rounds.reduce((a, r) => a + r.seconds, 0)
  return {
    rps: requests / seconds,
    requests,
    seconds,
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    rounds: rounds.map((r) => ({
      rps: Number(r.rps.toFixed(1)),
      p50: r.latencyMs.p50,
      p99: r.latencyMs.p99,
      ...(r.settled ? { unsettledAtStart: r.settled.unsettledAfter, settlement: r.settled.outcome } : {}),
      cpuUsPerRequest: r.cpuUsPerRequest,
      quietAfterMs: r.quietAfterMs,
    })),
    errorSample: rounds.find((r) => r.errorSample)?.errorSample,
  }
}

async function throughputSection(paths: Paths) {
  say(`throughput: ${CONNECTIONS} connections, ${P.throughput.rounds} round(s) of ${P.throughput.seconds} s per path`)
  const backend = [await throughputRound(paths.backend)]
  const node: Round[] = []
  const gateway: typeof node = []
  // Alternated, each round from a freshly settled node: the node's cost grows with its unsettled records.
  for (let i = 0; i < P.throughput.rounds; i++) {
    node.push(await throughputRound(paths.node, paths.settle))
    gateway.push(await throughputRound(paths.gateway, paths.settle))
  }
  const bare = [await throughputRound(paths.bare, paths.settle)]
  return {
    backend: combineRounds(backend),
    node: combineRounds(node),
    gateway: combineRounds(gateway),
    bare: combineRounds(bare),
  }
}

/**
 * CPU profiles under the throughput load, over the load window only: the gateway child's and this process's (the
 * provider node and the backend), both through the V8 inspector's profiler, as --cpu-prof would record them.
 */
async function profileSection(outDir: string, paths: Paths, gateway: GatewayChild) {
  say('profile: the provider node (this process) under the provider-node throughput load')
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await paths.settle()
  await session.post('Profiler.start')
  await throughputRound(paths.node)
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile }
  session.disconnect()
  const nodeFile = join(outDir, `provider-node-${stamp}.cpuprofile`)
  writeFileSync(nodeFile, JSON.stringify(profile))

  say('profile: the gateway (its own process) and this process under the gateway throughput load')
  const gatewayFile = join(outDir, `gateway-${stamp}.cpuprofile`)
  await paths.settle()
  await gateway.profileStart()
  const session2 = new Session()
  session2.connect()
  await session2.post('Profiler.enable')
  await session2.post('Profiler.setSamplingInterval', { interval: 200 })
  await session2.post('Profiler.start')
  await throughputRound(paths.gateway)
  const { profile: behind } = (await session2.post('Profiler.stop')) as unknown as { profile: CpuProfile }
  session2.disconnect()
  await gateway.profileStop(gatewayFile)
  const behindFile = join(outDir, `provider-node-behind-gateway-${stamp}.cpuprofile`)
  writeFileSync(behindFile, JSON.stringify(behind))
  return {
    gateway: { file: gatewayFile, ...summarizeProfile(JSON.parse(readFileSync(gatewayFile, 'utf8')) as CpuProfile) },
    providerNode: { file: nodeFile, ...summarizeProfile(profile) },
    providerNodeBehindGateway: { file: behindFile, ...summarizeProfile(behind) },
  }
}

function timeSync(n: number, fn: () => void): Dist {
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    fn()
    out[i] = performance.now() - t
  }
  return rounded(dist(out), 4)
}

async function timeAsync(n: number, fn: () => Promise<unknown>): Promise<Dist> {
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await fn()
    out[i] = performance.now() - t
  }
  return rounded(dist(out), 4)
}

/** The gateway's per-response verification, over real signed responses of the provider node. */
async function verificationSection(paths: Paths) {
  const n = P.verifyN
  say(`verification: ${n}× per check, over a real signed response (non-streamed and streamed)`)
  const cases: Record<string, unknown> = {}
  const dispatcher = new Agent({ keepAliveTimeout: 60_000, connections: 64 })
  const verifier = new DeliveryVerifier({ dispatcher })
  try {
    for (const stream of [false, true]) {
      const body = chatBody(stream)
      const res = await request(paths.node.url, { method: 'POST', headers: paths.node.headers, body })
      const responseBody = new Uint8Array(await res.body.arrayBuffer())
      const resKey = String(res.headers['zg-res-key'])
      // The node sends its signature along (ZG-Res-Signature): a header on a non-streamed answer, a stream's trailer.
      const sent = (stream ? res.trailers : res.headers)['zg-res-signature']
      if (typeof sent !== 'string') throw new Error(`the provider node sent no ZG-Res-Signature (stream: ${stream})`)
      const sigRes = await request(`${paths.nodeUrl}/v1/proxy/signature/${resKey}`)
      const signature = (await sigRes.body.json()) as ChatSignature
      const requestBody = new TextEncoder().encode(body)
      const check = { signature, expectedSigner: paths.signer, requestBody, responseBody }
      const ok = await verifyResponseSignature(check)
      if (!ok.ok) throw new Error(`the node's signature does not verify: ${ok.reason}`)
      const base = {
        url: paths.nodeUrl,
        model: DEV_CHAT_MODEL,
        verifiability: 'TeeML',
        teeSignerAddress: paths.signer,
        teeSignerAcknowledged: true,
        resKey,
        requestBody,
        responseBody,
      }
      const sigJson = JSON.stringify(signature)
      const stub = { ...base, fetchJson: async () => ({ status: 200, json: JSON.parse(sigJson) as unknown }) }
      // As the gateway runs it (src/gateway/forward.ts): hash both bodies, take the signature sent with the answer
      // or, from a 0G provider that sends none, fetch it through the keep-alive pool; recover its signer.
      const gatewayWay = (signature: Hex | null) => () =>
        verifier.verify({
          ...base,
          signature,
          requestBody: { sha256: sha256Hex(requestBody) },
          responseBody: { sha256: sha256Hex(responseBody) },
        })
      const sentWay = gatewayWay(sent as Hex)
      const fetchedWay = gatewayWay(null)
      for (const receipt of [await verifyDelivery(stub), await sentWay(), await fetchedWay()]) {
        if (receipt.status !== 'verified') throw new Error(`verification said ${receipt.status}: ${receipt.detail}`)
      }
      // Warm-up, then the measured runs.
      await timeAsync(50, () => verifyResponseSignature(check))
      await timeAsync(50, sentWay)
      await timeAsync(50, fetchedWay)
      const t = performance.now()
      await Promise.all(Array.from({ length: n }, sentWay))
      const parallelMs = performance.now() - t
      cases[stream ? 'streamed' : 'nonStreamed'] = {
        responseBytes: responseBody.length,
        /** ECDSA recovery and both sha256, on the calling thread. */
        verifyResponseSignatureMs: await timeAsync(n, () => verifyResponseSignature(check)),
        /** verifyDelivery with the signature fetch stubbed: JSON parse plus the check, on the calling thread. */
        verifyDeliveryStubFetchMs: await timeAsync(n, () => verifyDelivery(stub)),
        /** The gateway's way (hash, the sent signature, recovery), one at a time: a receipt's latency. */
        gatewayVerifierMs: await timeAsync(n, sentWay),
        /** The same with the signature fetched live from the node: any other 0G provider's case. */
        gatewayVerifierFetchedMs: await timeAsync(n, fetchedWay),
        /** n deliveries handed over at once: the verifier's throughput on one event loop. */
        gatewayVerifierChecksPerSecond: Number(((1000 * n) / parallelMs).toFixed(0)),
        sha256BothBodiesMs: timeSync(n, () => {
          sha256Hex(requestBody)
          sha256Hex(responseBody)
        }),
        /**
         * CPU (user + system) per response, n in a row, of the gateway's check (signature sent) alone and followed by
         * its signed receipt (bench/verification.ts): the whole process's (this one also hosts the idle dev stack), and
         * this thread's. The fetched-signature case is left out here: the node serving the fetch shares this process.
         */
        cpu: await responseCpu(
          n,
          sentWay,
          receiptInputs({ ...paths, model: DEV_CHAT_MODEL, resKey }),
          anvilAccount(DEV_WALLET_INDEX),
          anvilPrivateKey(DEV_WALLET_INDEX),
        ),
      }
    }
  } finally {
    await verifier.close()
    await dispatcher.close()
  }
  const quoteN = QUICK ? 10 : 30
  say(`quote verification: a fresh verifier's first TDX quote, then ${quoteN} more`)
  const quoteVerification = await quoteVerificationCost(quoteN, FROM_SOURCE)
  say(
    `  cold ${quoteVerification.coldMs} ms; warm mean ${quoteVerification.warmMs.mean} ms, p50 ${quoteVerification.warmMs.p50} ms; ` +
      `calling thread ${quoteVerification.warmCallingThreadCpuMs} ms CPU per quote`,
  )
  return { n, secp256k1: secp256k1Backend, ...cases, quoteVerification }
}

/** A streamed target's body cut to 4 tokens: the first-byte sections' short streams. */
const shortStream = (t: Target): Target => ({ ...t, body: JSON.stringify({ ...JSON.parse(t.body), max_tokens: 4 }) })

/**
 * Time to the first streamed byte with the gateway's per-response verification on and off. Two more gateway
 * processes (bench/verification.ts), the same but for what follows each answer: one checks it and signs its receipt
 * as every gateway does, the other's check is a no-op and it signs nothing. Both route to the same provider node
 * (chat-tee, the TEE one, which signs every answer: each of "on"'s answers is checked and gets a signed receipt),
 * warmed up alike, then one-token streams one at a time (an answer complete, signed and checked every ~25 ms: twice
 * the samples of 4-token ones in the same time), interleaved in one load run as on, on, off, off, …: the second
 * stream of each pair starts while its own gateway's check of the first is due (a gateway runs it at its next idle
 * moment, src/gateway/off-path.ts: just after the next request went to the provider, before its first byte is
 * back), which is the case in question; the first of each pair follows the other gateway's stream. Not chat-tee
 * against chat-standard through one gateway: the router always picks the TEE provider (verifiable first), a request
 * cannot pin a provider yet, and two provider nodes differ in more than the gateway's check.
 */
async function verificationTtfbSection(paths: Paths, dataDir: string) {
  const { warmup } = P.ttfb
  const streams = 2 * P.ttfb.streams
  say(`first byte, verification on vs off: two more gateways, ${streams} one-token streams per case, one at a time`)
  const gateways: VerificationGateway[] = []
  const role = (g: VerificationGateway) => `gateway, verification ${g.verification ? 'on' : 'off'}`
  try {
    for (const verification of [true, false]) {
      gateways.push(
        await startVerificationGateway({
          dataDir,
          name: `gateway-verification-${verification ? 'on' : 'off'}`,
          walletKey: anvilPrivateKey(DEV_WALLET_INDEX),
          devKey: DEV_API_KEY,
          verification,
          fromSource: FROM_SOURCE,
        }),
      )
    }
    const [on, off] = gateways as [VerificationGateway, VerificationGateway]
    const body = JSON.stringify({ ...JSON.parse(paths.gateway.body), max_tokens: 1 })
    const target = (g: VerificationGateway, name: string): Target => ({
      ...paths.gateway,
      name,
      url: `${g.url}/v1/chat/completions`,
      body,
    })
    for (const g of gateways) {
      const provider = String((await answers(target(g, role(g))))['x-zg-provider'])
      if (provider.toLowerCase() !== paths.provider.toLowerCase())
        throw new Error(`${role(g)} routed to ${provider}, not to ${paths.provider} as the main gateway does`)
      cpuWatched[role(g)] = g.pid
    }
    // Warmed up (JIT) as the first-byte section warms its gateway, fewer: both alike, interleaved.
    const warm = await runLoadProcess(
      {
        mode: 'stream',
        targets: [target(on, 'on'), target(off, 'off')],
        concurrency: 16,
        warmup: 0,
        streams: QUICK ? 150 : 500,
        staggerMs: 100,
        maxSeconds: 120,
      },
      150_000,
    )
    if (warm.mode !== 'stream' || warm.results.some((x) => x.errors)) throw new Error('the warm-up streams failed')
    await quiesce()
    await paths.settle()
    const [statsOn0, statsOff0] = await Promise.all([on.stats(), off.stats()])
    const before = cpuSnapshot()
    const r = await runLoadProcess(
      {
        mode: 'stream',
        targets: [
          target(on, 'on, after off'),
          target(on, 'on, after on'),
          target(off, 'off, after on'),
          target(off, 'off, after off'),
        ],
        concurrency: 1,
        warmup,
        streams,
        staggerMs: 0,
        maxSeconds: 120,
      },
      150_000,
    )
    if (r.mode !== 'stream') throw new Error('unexpected load result')
    const perStream = 2 * (warmup + streams)
    const cpu = cpuPerRequest(before, cpuSnapshot(), perStream)
    await quiesce()
    const [statsOn, statsOff] = await Promise.all([on.stats(), off.stats()])
    const delta = (a: Record<string, number>, b: Record<string, number>) =>
      Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]))
    const [onAfterOff, onAfterOn, offAfterOn, offAfterOff] = r.results as [
      StreamResult,
      StreamResult,
      StreamResult,
      StreamResult,
    ]
    for (const x of r.results)
      say(`  ${x.name}: TTFB p50 ${x.ttfbMs.p50} ms, p99 ${x.ttfbMs.p99} ms, ${x.errors} errors`)
    const out = {
      compares:
        'two gateway processes, verification + receipt signing on vs a no-op, same provider node (chat-tee), ' +
        'one-token streams one at a time, interleaved on, on, off, off; headline: the second of each pair (its own ' +
        "gateway's previous check due as it starts)",
      streamsPerCase: streams,
      warmupStreams: warmup,
      onAfterOn,
      offAfterOff,
      onAfterOff,
      offAfterOn,
      ttfbOnMinusOffP50Ms: Number((onAfterOn.ttfbMs.p50 - offAfterOff.ttfbMs.p50).toFixed(3)),
      ttfbOnMinusOffP99Ms: Number((onAfterOn.ttfbMs.p99 - offAfterOff.ttfbMs.p99).toFixed(3)),
      ttfbOnMinusOffMeanMs: Number((onAfterOn.ttfbMs.mean - offAfterOff.ttfbMs.mean).toFixed(3)),
      ttfbOnOverOffP50: Number((onAfterOn.ttfbMs.p50 / offAfterOff.ttfbMs.p50).toFixed(4)),
      /** What each gateway did after the measured answers (its checks by status, receipts signed). */
      measuredChecks: {
        on: {
          checks: delta(statsOn.checks, statsOn0.checks),
          receiptsSigned: statsOn.receiptsSigned - statsOn0.receiptsSigned,
        },
        off: {
          checks: delta(statsOff.checks, statsOff0.checks),
          receiptsSigned: statsOff.receiptsSigned - statsOff0.receiptsSigned,
        },
      },
      /** CPU per stream of each gateway process, by thread (µs; /proc ticks of 10 ms over all its streams). */
      cpuUsPerStream: { on: cpu[role(on)], off: cpu[role(off)] },
    }
    say(
      `  on − off, each after its own: TTFB p50 ${plus(out.ttfbOnMinusOffP50Ms, 3)} ms (${out.ttfbOnOverOffP50}×), ` +
        `mean ${plus(out.ttfbOnMinusOffMeanMs, 3)} ms; ` +
        `CPU per stream on ${out.cpuUsPerStream.on?.total} µs, off ${out.cpuUsPerStream.off?.total} µs; ` +
        `on checked ${JSON.stringify(out.measuredChecks.on.checks)}, signed ${out.measuredChecks.on.receiptsSigned}`,
    )
    return out
  } finally {
    for (const g of gateways) {
      delete cpuWatched[role(g)]
      await g.stop()
    }
  }
}

/**
 * Where the one-at-a-time first byte's time goes, hop by hop: the first-byte section's streams again, with every
 * process on the paths (load generator, gateway, bare proxy, and this one, the provider node's) marking when a
 * request's headers are parsed, when it makes and sends its upstream request, when that answers and when it writes
 * its own first bytes (bench/hop-trace.mjs, one clock for all). Each mark costs a few µs; this pass's totals are in
 * the report beside the untraced section's.
 */
async function hopSection(paths: Paths, gateway: GatewayChild, bare: Child) {
  const { warmup, streams } = P.ttfb
  say(`hops: ${streams} short streams per path, one at a time, each process marking its HTTP moments`)
  await quiesce()
  await paths.settle()
  await Promise.all([gateway.traceStart(), bare.traceStart()])
  startHopTrace()
  let r: LoadResult
  const marks: Record<string, HopMark[]> = {}
  try {
    r = await runLoadProcess(
      {
        mode: 'stream',
        targets: [paths.backend, paths.node, paths.gateway, paths.bare].map(shortStream),
        concurrency: 1,
        warmup,
        streams,
        staggerMs: 0,
        maxSeconds: 120,
        trace: true,
      },
      150_000,
    )
  } finally {
    marks.stack = stopHopTrace()
    ;[marks.gateway, marks.bare] = await Promise.all([gateway.traceStop(), bare.traceStop()])
  }
  if (r.mode !== 'stream') throw new Error('unexpected load result')
  marks.client = r.marks ?? []
  const port = (url: string) => Number(new URL(url).port)
  const node: Hop = {
    name: 'provider node',
    role: 'stack',
    port: port(paths.node.url),
    upstream: port(paths.backend.url),
  }
  const proxy = (name: string, role: string, url: string): Hop => ({ name, role, port: port(url), upstream: node.port })
  const gw = proxy('gateway', 'gateway', paths.gateway.url)
  const bp = proxy('bare proxy', 'bare', paths.bare.url)
  const out = {
    gateway: hopBreakdown(marks, 'client', gw.port, [gw, node]),
    bare: hopBreakdown(marks, 'client', bp.port, [bp, node]),
    node: hopBreakdown(marks, 'client', node.port, [node]),
    /** The gateway's handle and relay, step by step, from its own step moments (src/gateway/steps.ts). */
    gatewaySteps: gatewaySteps(marks.gateway ?? [], gw),
    ttfbMsTraced: Object.fromEntries(r.results.map((x) => [x.name, x.ttfbMs.p50])),
  }
  for (const [name, h] of [
    ['gateway', out.gateway.hops.gateway],
    ['bare proxy', out.bare.hops['bare proxy']],
  ] as const)
    say(
      `  ${name}: ${Object.entries(h ?? {})
        .map(([k, v]) => `${k} ${v} µs`)
        .join(', ')}`,
    )
  say(`  gateway, step by step: ${stepCells(out.gatewaySteps.steps, ', ')} (µs)`)
  return out
}

/** One cell per byte relay of a latency section, "C 0.612 · Node 0.701" (– when there were none). */
function relayCells(section: { relays: LatencyResult[] }, cell: (r: LatencyResult) => string): string {
  if (!section.relays.length) return '–'
  return section.relays.map((r) => `${r.name.replace(/^byte relay \((.*)\)$/, '$1')} ${cell(r)}`).join(' · ')
}

/** "receive→app 40 · app→auth 25 · …" (µs). */
function stepCells(steps: GatewayStepTimes, separator = ' · '): string {
  return Object.entries(steps)
    .map(([k, v]) => `${k} ${v}`)
    .join(separator)
}

/**
 * Time to the first streamed byte with one stream at a time (short answers, 4 tokens, at the same pace), the targets
 * interleaved: what each layer adds to it, as the latency section measures for whole answers. The streaming section
 * measures the same under 30 concurrent streams, where the machine's two cores are the limit.
 */
async function ttfbSection(paths: Paths) {
  const { warmup, streams } = P.ttfb
  say(`time to first byte: ${streams} short streams per path (+${warmup} warm-up), one at a time`)
  await quiesce()
  await paths.settle()
  const short = shortStream
  // This part's gateway process is fresh: its stream path is warmed up (JIT) by unmeasured streams first, as the
  // latency section's warm-up does for whole answers. A stream calls most of that path's functions a few times
  // only, so V8 is still compiling them (Maglev) after 500 streams: with 100 warm-up streams, both proxies measured
  // 0.2 ms slower here than after 3,000, the state of a gateway in service.
  await streamRun(paths, { concurrency: 16, warmup: 0, streams: QUICK ? 200 : 1500, staggerMs: 100, shape: short })
  await quiesce()
  const r = await streamRun(paths, { concurrency: 1, warmup, streams, staggerMs: 0, shape: short })
  for (const res of [r.backend, r.node, r.gateway, r.bare])
    say(`  ${res.name}: TTFB p50 ${res.ttfbMs.p50} ms, p99 ${res.ttfbMs.p99} ms, ${res.errors} errors`)
  return { backend: r.backend, node: r.node, gateway: r.gateway, bare: r.bare }
}

/** One stream-mode load run over the four paths, interleaved; their results, and the run's wall time. */
async function streamRun(
  paths: Paths,
  opts: { concurrency: number; warmup: number; streams: number; staggerMs: number; shape?: (t: Target) => Target },
) {
  const { shape = (t: Target) => t, ...load } = opts
  const r = await runLoadProcess(
    {
      mode: 'stream',
      targets: [paths.backend, paths.node, paths.gateway, paths.bare].map(shape),
      ...load,
      maxSeconds: 120,
    },
    150_000,
  )
  if (r.mode !== 'stream') throw new Error('unexpected load result')
  const [backend, node, gateway, bare] = r.results
  return {
    wallSeconds: r.wallSeconds,
    truncated: r.truncated,
    backend: backend!,
    node: node!,
    gateway: gateway!,
    bare: bare!,
  }
}

async function streamSection(paths: Paths) {
  const { concurrency, warmup, streams } = P.stream
  say(
    `streaming: ${streams} streams per path (+${warmup} warm-up), ${concurrency} at a time, ${TOKEN_DELAY_MS} ms/token`,
  )
  await quiesce()
  const settled = await paths.settle()
  const before = cpuSnapshot()
  // Workers start spread over about one stream's duration, so that streams start steadily, not in bursts.
  const r = await streamRun(paths, { concurrency, warmup, streams, staggerMs: 700 })
  // Only gateway streams reach the gateway process, only bare-proxy streams the bare proxy: their CPU per stream.
  const cpu = cpuPerRequest(before, cpuSnapshot(), warmup + streams)
  return { ...r, settled, cpuUsPerStream: { gateway: cpu.gateway, bareProxy: cpu['bare proxy'] } }
}

type HeapPeak = { heapUsedMB: number; heapTotalMB: number; externalMB: number; arrayBuffersMB: number }

/** Asks the gateway for process.memoryUsage() every `everyMs` (one question at a time); keeps the maxima. */
function watchHeap(gateway: GatewayChild, everyMs = 100): { stop(): Promise<HeapPeak> } {
  const peak: HeapPeak = { heapUsedMB: 0, heapTotalMB: 0, externalMB: 0, arrayBuffersMB: 0 }
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const m = await gateway.memory()
      peak.heapUsedMB = Math.max(peak.heapUsedMB, m.heapUsed / 2 ** 20)
      peak.heapTotalMB = Math.max(peak.heapTotalMB, m.heapTotal / 2 ** 20)
      peak.externalMB = Math.max(peak.externalMB, m.external / 2 ** 20)
      peak.arrayBuffersMB = Math.max(peak.arrayBuffersMB, m.arrayBuffers / 2 ** 20)
      await sleep(everyMs)
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
      return peak
    },
  }
}

async function manyStreams(target: Target, backend: DevStack['backend'], gateway?: GatewayChild) {
  const watch = gateway ? watchRss(gateway.pid) : undefined
  const heap = gateway ? watchHeap(gateway) : undefined
  await quiesce()
  const cpuBefore = cpuSnapshot()
  // How many requests the backend holds at once: what reaches it through each path.
  let backendPeak = 0
  const inFlight = setInterval(() => {
    backendPeak = Math.max(backendPeak, backend.stats.inFlight)
  }, 10)
  const r = await runLoadProcess(
    {
      mode: 'stream',
      targets: [target],
      concurrency: P.many,
      warmup: 0,
      streams: P.many,
      staggerMs: 0,
      maxSeconds: 120,
    },
    150_000,
  )
  clearInterval(inFlight)
  const cpu = cpuPerRequest(cpuBefore, cpuSnapshot(), P.many)
  const peakPolled = watch?.stop()
  const heapPeak = await heap?.stop()
  if (r.mode !== 'stream') throw new Error('unexpected load result')
  const result = r.results[0]!
  say(
    `  ${target.name}: ${result.completed}/${P.many} complete, ${result.errors} errors, ${r.wallSeconds.toFixed(2)} s, ` +
      `at most ${backendPeak} at the backend at once` +
      (peakPolled ? `, gateway RSS peak ${peakPolled.toFixed(0)} MB` : ''),
  )
  return {
    wallSeconds: r.wallSeconds,
    truncated: r.truncated,
    ...result,
    backendInFlightPeak: backendPeak,
    cpuUsPerStream: gateway ? cpu.gateway : cpu['stack (node + backend)'],
    ...(peakPolled ? { peakPolledRssMB: peakPolled } : {}),
    ...(heapPeak ? { heapPeak } : {}),
  }
}

async function manyStreamsSection(paths: Paths, gateway: GatewayChild, be: DevStack['backend']) {
  say(`${P.many} concurrent streams: backend, provider node, then gateway`)
  const backend = await manyStreams(paths.backend, be)
  await paths.settle()
  const node = await manyStreams(paths.node, be)
  await paths.settle()
  const gw = await manyStreams(paths.gateway, be, gateway)
  const mem = memOf(gateway.pid)
  return { backend, node, gateway: gw, gatewayHwmMB: mem.hwmMB, gatewayRssAfterMB: mem.rssMB }
}

/**
 * The gateway's RSS at rest: read from outside (asking the process would wake it) every second for 25 s after it is
 * ready. V8's memory reducer shrinks the heap once the process has been idle a while (13-17 s after start here), so
 * the figure is the one at 25 s; the one 2 s after start and the highest one seen are reported beside it.
 */
async function idleRss(gateway: GatewayChild) {
  const seen: number[] = []
  for (let s = 1; s <= 25; s++) {
    await sleep(1_000)
    seen.push(memOf(gateway.pid).rssMB)
  }
  const afterStartMB = seen[1]!
  const { rssMB, hwmMB } = memOf(gateway.pid)
  const beforeRestMaxMB = Math.max(...seen)
  const m = await gateway.memory()
  return {
    rssMB,
    afterStartMB,
    beforeRestMaxMB,
    hwmMB,
    heapUsedMB: m.heapUsed / 2 ** 20,
    heapTotalMB: m.heapTotal / 2 ** 20,
    externalMB: m.external / 2 ** 20,
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Report

const stamp = new Date().toISOString().replace(/[:.]/g, '-')

type Row = [string, string, string, string, string, string, string, string]

function fmt(v: number | undefined, digits = 2): string {
  return v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits)
}
const plus = (v: number, digits = 2) => `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`
const times = (v: number, d: number) => `${(v / d).toFixed(2)}×`

function printTable(rows: Row[]) {
  const head: Row = ['figure', 'direct', 'provider node', 'gateway', 'overhead', 'ratio vs direct', 'target', 'pass']
  const all = [head, ...rows]
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)))
  const line = (r: Row) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')
  console.log(line(head))
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'))
  for (const r of rows) console.log(line(r))
}

const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL')

/** One hop's own steps of a traced call, "receive · handle · send · relay · deliver" (µs), without what is behind it. */
function hopCells(report: HopReport, hop: string): string {
  const h = report.hops[hop]
  return h && report.calls ? [h.receive, h.handle, h.send, h.relay, h.deliver].join(' · ') : '–'
}

/** "stack 812 · gw 1290 (main 700, worker 560)" from the first throughput round of a path. */
function cpuCell(path: { rounds: Array<{ cpuUsPerRequest: Record<string, Record<string, number>> }> }): string {
  const cpu = path.rounds[0]!.cpuUsPerRequest
  const stack = cpu['stack (node + backend)']?.total ?? 0
  const gw = cpu.gateway
  const parts = [`stack ${stack}`]
  if (gw && gw.total! > 0) parts.push(`gw ${gw.total} (main ${gw.MainThread ?? 0}, worker ${gw.WorkerThread ?? 0})`)
  return parts.join(' · ')
}

// ---------------------------------------------------------------------------------------------------------------

async function main() {
  const outDir = join(HERE, 'results')
  mkdirSync(outDir, { recursive: true })
  const dataDir = mkdtempSync(join(tmpdir(), 'zg-bench-'))
  let stack: DevStack | undefined
  let gateway: GatewayChild | undefined
  let bare: Child | undefined
  let relays: ByteRelay[] = []
  const cleanup = async () => {
    bare?.stop()
    for (const r of relays) r.stop()
    await gateway?.stop().catch(() => undefined)
    await stack?.stop().catch(() => undefined)
    if (!KEEP) rmSync(dataDir, { recursive: true, force: true })
  }
  process.once('SIGINT', () => {
    say('interrupted: stopping')
    void cleanup().then(() => process.exit(130))
  })
  try {
    say(`data dir ${dataDir}${QUICK ? ' (quick run)' : ''}${PROFILE ? ' (with CPU profiles)' : ''}`)
    const calibration = calibrate()
    say(
      `machine speed: ${calibration.jsonMs} ms for 20,000 JSON round trips, ${calibration.sha256Ms} ms for sha256 over 32 MiB (compare runs by these)`,
    )
    if (loadAtStart[0]! > 0.5) {
      say(`warning: load average ${loadAtStart[0]} before the run: other work on this machine skews the figures`)
    }
    if (FROM_SOURCE) say('the gateway runs from its TypeScript sources (ZG_BENCH_FROM_SOURCE=1)')
    else {
      // The gateway runs as the published package does, from the bundle.
      execFileSync(process.execPath, [join(ROOT, 'scripts/build.ts')], { cwd: ROOT, stdio: 'ignore' })
      say('built dist/ (the gateway runs from the bundle, as the published package does)')
    }
    const compiled = compileByteRelay(dataDir)
    const nativeRelay = 'path' in compiled ? compiled.path : undefined
    if ('error' in compiled) say(`no byte relay in C (${compiled.error}): its reference cells stay empty`)
    /** The dev stack at a token pace, a fresh gateway process (its RSS at rest reported) and the bare proxy. */
    const startPart = async (tokenDelayMs: number) => {
      // Kept in the outer variables as they start, so that cleanup() stops whatever did.
      const st = await startStack(dataDir, tokenDelayMs)
      stack = st
      const gw = await startGatewayChild(dataDir)
      gateway = gw
      const rest = await idleRss(gw)
      say(
        `gateway pid ${gw.pid}: RSS ${rest.afterStartMB.toFixed(1)} MB 2 s after start, at most ${rest.beforeRestMaxMB.toFixed(1)} MB, ${rest.rssMB.toFixed(1)} MB at rest (25 s)`,
      )
      const bp = await startBareProxy()
      bare = bp
      const startRelays = async (nodePort: number) => {
        relays = [
          ...(nativeRelay ? [await startByteRelay('byte relay (C)', [nativeRelay], nodePort)] : []),
          await startByteRelay('byte relay (Node)', NODE_BYTE_RELAY, nodePort),
        ]
        return relays
      }
      const paths = await pathsFor(st, gw, bp, startRelays, tokenDelayMs > 0)
      cpuWatched.gateway = gw.pid
      cpuWatched['bare proxy'] = bp.pid
      return { rest, paths, stack: st, gateway: gw, bare: bp }
    }
    // Part 1: a backend that answers at once, for latency and throughput.
    const part1 = await startPart(0)
    const idle = part1.rest
    const fast = part1.paths
    say(`the gateway routes ${DEV_CHAT_MODEL} to ${fast.provider} (${fast.nodeUrl}); measuring that node directly too`)
    const latency = await latencySection(fast, P.latency)
    // The same, with idle time between requests: what the request path costs when the gateway's off-path work for
    // the previous response (signature fetch and check, records) has finished.
    const spaced = await latencySection(fast, P.spaced)
    const throughput = await throughputSection(fast)
    let profiles: Awaited<ReturnType<typeof profileSection>> | undefined
    if (PROFILE) profiles = await profileSection(outDir, fast, part1.gateway)
    const verification = await verificationSection(fast)
    await part1.gateway.stop()
    gateway = undefined
    // With the first gateway stopped: the instances here pay from the same wallet.
    const scaling = await scalingSection({
      startGateway: ({ store, adminKey, dir }) => startGatewayChild(dataDir, { store, adminKey, gatewayDir: dir }),
      runLoad: runLoadProcess,
      quiet: async () => {
        await quiesce()
        await fast.settle()
      },
      say,
      body: chatBody(false),
      connections: CONNECTIONS,
      throughput: { warmupSeconds: P.throughput.warmupSeconds, seconds: P.throughput.seconds },
      latency: P.latency,
    })
    part1.bare.stop()
    bare = undefined
    for (const r of relays) r.stop()
    relays = []
    await part1.stack.stop()
    stack = undefined

    // Part 2: the same chain and nodes, restarted with a paced backend, and a fresh gateway process.
    const part2 = await startPart(TOKEN_DELAY_MS)
    const idle2 = part2.rest
    const paced = part2.paths
    const firstByte = await ttfbSection(paced)
    const hops = await hopSection(paced, part2.gateway, part2.bare)
    const verificationTtfb = await verificationTtfbSection(paced, dataDir)
    const streaming = await streamSection(paced)
    const many = await manyStreamsSection(paced, part2.gateway, part2.stack.backend)

    // -------------------------------------------------------------------------------------------------------------
    const L = latency
    const SP = spaced
    const T = throughput
    const S = streaming
    const gwOverP50 = L.gateway.latencyMs.p50 - L.node.latencyMs.p50
    const gwOverP99 = L.gateway.latencyMs.p99 - L.node.latencyMs.p99
    const nodeOverP50 = L.node.latencyMs.p50 - L.backend.latencyMs.p50
    const nodeOverP99 = L.node.latencyMs.p99 - L.backend.latencyMs.p99
    const tpRatio = T.gateway.rps / T.node.rps
    const ttfb = (r: StreamResult) => r.ttfbMs
    const F = firstByte
    const ttfbGw = ttfb(F.gateway).p50 - ttfb(F.node).p50
    const ttfbNode = ttfb(F.node).p50 - ttfb(F.backend).p50
    const ttfbGwLoaded = ttfb(S.gateway).p50 - ttfb(S.node).p50
    const ttfbNodeLoaded = ttfb(S.node).p50 - ttfb(S.backend).p50
    const gapGw = S.gateway.gapMs.p50 - S.node.gapMs.p50
    const gapNode = S.node.gapMs.p50 - S.backend.gapMs.p50
    const gapGw99 = S.gateway.gapMs.p99 - S.node.gapMs.p99
    const peakRss = Math.max(many.gatewayHwmMB, many.gateway.peakPolledRssMB ?? 0)
    const idleMB = idle.rssMB
    const allDone = many.gateway.completed === P.many && many.gateway.errors === 0
    type VerificationCase = {
      verifyResponseSignatureMs: Dist
      verifyDeliveryStubFetchMs: Dist
      gatewayVerifierMs: Dist
      gatewayVerifierFetchedMs: Dist
      gatewayVerifierChecksPerSecond: number
      cpu: Awaited<ReturnType<typeof responseCpu>>
    }
    const ver = verification as unknown as Record<'nonStreamed' | 'streamed', VerificationCase> & {
      secp256k1: string
      quoteVerification: Awaited<ReturnType<typeof quoteVerificationCost>>
    }
    const cpuJson = ver.nonStreamed.cpu
    const cpuSse = ver.streamed.cpu
    const perResponseCpu = Math.max(cpuJson.checkAndReceiptCpuMs.processMs, cpuSse.checkAndReceiptCpuMs.processMs)
    const Q = ver.quoteVerification
    const VT = verificationTtfb

    const checks = {
      gatewayOverheadP50: { measuredMs: gwOverP50, targetMs: 0.5, pass: gwOverP50 <= 0.5 },
      gatewayOverheadP99: { measuredMs: gwOverP99, targetMs: 2, pass: gwOverP99 <= 2 },
      providerNodeOverheadP50: { measuredMs: nodeOverP50, targetMs: 1, pass: nodeOverP50 <= 1 },
      throughputGatewayVsNode: { measuredRatio: tpRatio, target: 0.4, pass: tpRatio >= 0.4 },
      // Met only if met both one stream at a time and under load.
      ttfbAddedByGatewayP50: {
        measuredMs: ttfbGw,
        underLoadMs: ttfbGwLoaded,
        underLoadConcurrency: P.stream.concurrency,
        targetMs: 1,
        pass: ttfbGw <= 1 && ttfbGwLoaded <= 1,
      },
      interTokenDelayAddedByGatewayP50: { measuredMs: gapGw, targetMs: 0.5, pass: gapGw <= 0.5 },
      thousandStreamsComplete: { completed: many.gateway.completed, of: P.many, pass: allDone },
      gatewayPeakRssThousandStreams: { measuredMB: peakRss, targetMB: 300, pass: peakRss <= 300 },
      gatewayIdleRss: { measuredMB: idleMB, targetMB: 100, pass: idleMB <= 100 },
      // CPU of the process (user + system) per answer, check and signed receipt, the dearer of json and sse.
      perResponseVerificationCpu: { measuredMs: perResponseCpu, targetMs: 1, pass: perResponseCpu <= 1 },
      quoteVerificationWarm: { measuredMs: Q.warmMs.mean, targetMs: 20, pass: Q.warmMs.mean <= 20 },
      // "Unchanged": within the bound the inter-token gap has (adds none, ≤ +0.5).
      ttfbVerificationOnMinusOffP50: {
        measuredMs: VT.ttfbOnMinusOffP50Ms,
        targetMs: 0.5,
        pass: VT.ttfbOnMinusOffP50Ms <= 0.5,
      },
    }

    const rows: Row[] = [
      [
        'non-streamed latency p50, c=1 (ms)',
        fmt(L.backend.latencyMs.p50, 3),
        fmt(L.node.latencyMs.p50, 3),
        fmt(L.gateway.latencyMs.p50, 3),
        `node ${plus(nodeOverP50, 3)} · gw ${plus(gwOverP50, 3)}`,
        `node ${times(L.node.latencyMs.p50, L.backend.latencyMs.p50)} · gw ${times(L.gateway.latencyMs.p50, L.backend.latencyMs.p50)}`,
        'node ≤ +1 · gw ≤ +0.5',
        `${verdict(checks.providerNodeOverheadP50.pass)} · ${verdict(checks.gatewayOverheadP50.pass)}`,
      ],
      [
        'non-streamed latency p99, c=1 (ms)',
        fmt(L.backend.latencyMs.p99, 3),
        fmt(L.node.latencyMs.p99, 3),
        fmt(L.gateway.latencyMs.p99, 3),
        `node ${plus(nodeOverP99, 3)} · gw ${plus(gwOverP99, 3)}`,
        `node ${times(L.node.latencyMs.p99, L.backend.latencyMs.p99)} · gw ${times(L.gateway.latencyMs.p99, L.backend.latencyMs.p99)}`,
        'gw ≤ +2',
        verdict(checks.gatewayOverheadP99.pass),
      ],
      [
        `non-streamed p50 / p99, c=1, ${P.spaced.pauseMs} ms apart (ms)`,
        `${fmt(SP.backend.latencyMs.p50, 3)} / ${fmt(SP.backend.latencyMs.p99, 3)}`,
        `${fmt(SP.node.latencyMs.p50, 3)} / ${fmt(SP.node.latencyMs.p99, 3)}`,
        `${fmt(SP.gateway.latencyMs.p50, 3)} / ${fmt(SP.gateway.latencyMs.p99, 3)}`,
        `node ${plus(SP.node.latencyMs.p50 - SP.backend.latencyMs.p50, 3)} · gw ${plus(SP.gateway.latencyMs.p50 - SP.node.latencyMs.p50, 3)} / ${plus(SP.gateway.latencyMs.p99 - SP.node.latencyMs.p99, 3)}`,
        `node ${times(SP.node.latencyMs.p50, SP.backend.latencyMs.p50)} · gw ${times(SP.gateway.latencyMs.p50, SP.backend.latencyMs.p50)}`,
        '(info: same targets)',
        `(${verdict(SP.node.latencyMs.p50 - SP.backend.latencyMs.p50 <= 1)} · ${verdict(SP.gateway.latencyMs.p50 - SP.node.latencyMs.p50 <= 0.5)} · ${verdict(SP.gateway.latencyMs.p99 - SP.node.latencyMs.p99 <= 2)})`,
      ],
      [
        `throughput, ${CONNECTIONS} connections (req/s)`,
        fmt(T.backend.rps, 0),
        fmt(T.node.rps, 0),
        fmt(T.gateway.rps, 0),
        `gw = ${(100 * tpRatio).toFixed(1)}% of node`,
        `node ${times(T.node.rps, T.backend.rps)} · gw ${times(T.gateway.rps, T.backend.rps)}`,
        'gw ≥ 40% of node',
        verdict(checks.throughputGatewayVsNode.pass),
      ],
      [
        'CPU per request at 50 conn (µs): stack · gateway',
        cpuCell(T.backend),
        cpuCell(T.node),
        cpuCell(T.gateway),
        '–',
        '–',
        '–',
        '–',
      ],
      [
        'stream TTFB p50, c=1 (ms)',
        fmt(F.backend.ttfbMs.p50, 3),
        fmt(F.node.ttfbMs.p50, 3),
        fmt(F.gateway.ttfbMs.p50, 3),
        `node ${plus(ttfbNode, 3)} · gw ${plus(ttfbGw, 3)} · bare ${plus(F.bare.ttfbMs.p50 - F.node.ttfbMs.p50, 3)}`,
        `node ${times(F.node.ttfbMs.p50, F.backend.ttfbMs.p50)} · gw ${times(F.gateway.ttfbMs.p50, F.backend.ttfbMs.p50)}`,
        'gw ≤ +1',
        verdict(ttfbGw <= 1),
      ],
      [
        'the same, hop by hop (µs p50): receive · handle · send · relay · deliver',
        '–',
        hopCells(hops.node, 'provider node'),
        hopCells(hops.gateway, 'gateway'),
        `bare ${hopCells(hops.bare, 'bare proxy')}`,
        '–',
        '(info: see docs/performance.md)',
        '–',
      ],
      [
        "the gateway's handle and relay, step by step (µs p50)",
        '–',
        '–',
        hops.gatewaySteps.calls ? stepCells(hops.gatewaySteps.steps) : '–',
        '–',
        '–',
        '(info: src/gateway/steps.ts)',
        '–',
      ],
      [
        `stream TTFB p50, ${P.stream.concurrency} streams at once (ms)`,
        fmt(S.backend.ttfbMs.p50, 3),
        fmt(S.node.ttfbMs.p50, 3),
        fmt(S.gateway.ttfbMs.p50, 3),
        `node ${plus(ttfbNodeLoaded, 3)} · gw ${plus(ttfbGwLoaded, 3)}`,
        `node ${times(S.node.ttfbMs.p50, S.backend.ttfbMs.p50)} · gw ${times(S.gateway.ttfbMs.p50, S.backend.ttfbMs.p50)}`,
        'gw ≤ +1',
        verdict(ttfbGwLoaded <= 1),
      ],
      [
        `stream TTFB p99, ${P.stream.concurrency} streams at once (ms)`,
        fmt(S.backend.ttfbMs.p99, 3),
        fmt(S.node.ttfbMs.p99, 3),
        fmt(S.gateway.ttfbMs.p99, 3),
        `node ${plus(S.node.ttfbMs.p99 - S.backend.ttfbMs.p99, 3)} · gw ${plus(S.gateway.ttfbMs.p99 - S.node.ttfbMs.p99, 3)}`,
        `node ${times(S.node.ttfbMs.p99, S.backend.ttfbMs.p99)} · gw ${times(S.gateway.ttfbMs.p99, S.backend.ttfbMs.p99)}`,
        '–',
        '–',
      ],
      [
        'CPU per 32-token stream (µs): gateway · bare proxy',
        '–',
        '–',
        `gw ${S.cpuUsPerStream.gateway?.total ?? '–'} (main ${S.cpuUsPerStream.gateway?.MainThread ?? '–'})`,
        `bare ${S.cpuUsPerStream.bareProxy?.total ?? '–'}`,
        '–',
        '–',
        '–',
      ],
      [
        `inter-token gap p50, ${TOKEN_DELAY_MS} ms pace (ms)`,
        fmt(S.backend.gapMs.p50, 3),
        fmt(S.node.gapMs.p50, 3),
        fmt(S.gateway.gapMs.p50, 3),
        `node ${plus(gapNode, 3)} · gw ${plus(gapGw, 3)}`,
        `node ${times(S.node.gapMs.p50, S.backend.gapMs.p50)} · gw ${times(S.gateway.gapMs.p50, S.backend.gapMs.p50)}`,
        'gw adds none (≤ +0.5)',
        verdict(checks.interTokenDelayAddedByGatewayP50.pass),
      ],
      [
        'inter-token gap p99 (ms)',
        fmt(S.backend.gapMs.p99, 3),
        fmt(S.node.gapMs.p99, 3),
        fmt(S.gateway.gapMs.p99, 3),
        `node ${plus(S.node.gapMs.p99 - S.backend.gapMs.p99, 3)} · gw ${plus(gapGw99, 3)}`,
        `node ${times(S.node.gapMs.p99, S.backend.gapMs.p99)} · gw ${times(S.gateway.gapMs.p99, S.backend.gapMs.p99)}`,
        '–',
        '–',
      ],
      [
        `${P.many} concurrent streams: completed`,
        `${many.backend.completed}/${P.many}`,
        `${many.node.completed}/${P.many}`,
        `${many.gateway.completed}/${P.many}`,
        `errors ${many.backend.errors}/${many.node.errors}/${many.gateway.errors}`,
        '–',
        'all complete',
        verdict(checks.thousandStreamsComplete.pass),
      ],
      [
        `${P.many} concurrent streams: wall time (s)`,
        fmt(many.backend.wallSeconds),
        fmt(many.node.wallSeconds),
        fmt(many.gateway.wallSeconds),
        `node ${plus(many.node.wallSeconds - many.backend.wallSeconds)} · gw ${plus(many.gateway.wallSeconds - many.node.wallSeconds)}`,
        `node ${times(many.node.wallSeconds, many.backend.wallSeconds)} · gw ${times(many.gateway.wallSeconds, many.backend.wallSeconds)}`,
        '–',
        '–',
      ],
      [
        `${P.many} concurrent streams: TTFB p50 / p99 (ms)`,
        `${fmt(many.backend.ttfbMs.p50, 1)} / ${fmt(many.backend.ttfbMs.p99, 1)}`,
        `${fmt(many.node.ttfbMs.p50, 1)} / ${fmt(many.node.ttfbMs.p99, 1)}`,
        `${fmt(many.gateway.ttfbMs.p50, 1)} / ${fmt(many.gateway.ttfbMs.p99, 1)}`,
        `gw ${plus(many.gateway.ttfbMs.p50 - many.node.ttfbMs.p50, 1)} / ${plus(many.gateway.ttfbMs.p99 - many.node.ttfbMs.p99, 1)}`,
        '–',
        '–',
        '–',
      ],
      [
        `${P.many} concurrent streams: peak at the backend at once`,
        String(many.backend.backendInFlightPeak),
        String(many.node.backendInFlightPeak),
        String(many.gateway.backendInFlightPeak),
        '–',
        '–',
        '–',
        '–',
      ],
      [
        `gateway peak RSS, ${P.many} streams (MB)`,
        '–',
        '–',
        fmt(peakRss, 1),
        '–',
        '–',
        '≤ 300',
        verdict(checks.gatewayPeakRssThousandStreams.pass),
      ],
      [
        'gateway RSS at rest (25 s after start) · 2 s after · most before rest (MB)',
        '–',
        '–',
        `${fmt(idleMB, 1)} · ${fmt(idle.afterStartMB, 1)} · ${fmt(idle.beforeRestMaxMB, 1)}`,
        '–',
        '–',
        '≤ 100',
        verdict(checks.gatewayIdleRss.pass),
      ],
      [
        'reference: bare Node proxy → node, c=1 p50 / p99 (ms)',
        `${fmt(L.backend.latencyMs.p50, 3)} / ${fmt(L.backend.latencyMs.p99, 3)}`,
        `${fmt(L.node.latencyMs.p50, 3)} / ${fmt(L.node.latencyMs.p99, 3)}`,
        `bare ${fmt(L.bare.latencyMs.p50, 3)} / ${fmt(L.bare.latencyMs.p99, 3)}`,
        `bare ${plus(L.bare.latencyMs.p50 - L.node.latencyMs.p50, 3)} / ${plus(L.bare.latencyMs.p99 - L.node.latencyMs.p99, 3)}`,
        `bare ${times(L.bare.latencyMs.p50, L.backend.latencyMs.p50)}`,
        '(floor of one more hop)',
        '–',
      ],
      [
        'reference: byte relays → node (no HTTP), c=1 p50 (ms)',
        fmt(L.backend.latencyMs.p50, 3),
        fmt(L.node.latencyMs.p50, 3),
        relayCells(L, (r) => fmt(r.latencyMs.p50, 3)),
        relayCells(L, (r) => plus(r.latencyMs.p50 - L.node.latencyMs.p50, 3)),
        '–',
        '(floor of one more process)',
        '–',
      ],
      [
        `reference: bare proxy, c=1, ${P.spaced.pauseMs} ms apart, p50 (ms)`,
        fmt(SP.backend.latencyMs.p50, 3),
        fmt(SP.node.latencyMs.p50, 3),
        `bare ${fmt(SP.bare.latencyMs.p50, 3)}`,
        `bare ${plus(SP.bare.latencyMs.p50 - SP.node.latencyMs.p50, 3)}`,
        `bare ${times(SP.bare.latencyMs.p50, SP.backend.latencyMs.p50)}`,
        '–',
        '–',
      ],
      [
        `reference: bare proxy throughput, ${CONNECTIONS} conn (req/s)`,
        fmt(T.backend.rps, 0),
        fmt(T.node.rps, 0),
        `bare ${fmt(T.bare.rps, 0)}`,
        `bare = ${((100 * T.bare.rps) / T.node.rps).toFixed(1)}% of node`,
        `bare ${times(T.bare.rps, T.backend.rps)}`,
        '–',
        '–',
      ],
      [
        'reference: bare proxy stream TTFB p50 (ms)',
        fmt(S.backend.ttfbMs.p50, 3),
        fmt(S.node.ttfbMs.p50, 3),
        `bare ${fmt(S.bare.ttfbMs.p50, 3)}`,
        `bare ${plus(S.bare.ttfbMs.p50 - S.node.ttfbMs.p50, 3)}`,
        `bare ${times(S.bare.ttfbMs.p50, S.backend.ttfbMs.p50)}`,
        '–',
        '–',
      ],
      [
        'response signature check, in-thread, mean (ms)',
        '–',
        '–',
        `${fmt(ver.nonStreamed.verifyResponseSignatureMs.mean, 3)} json · ${fmt(ver.streamed.verifyResponseSignatureMs.mean, 3)} sse`,
        '–',
        '–',
        '–',
        '–',
      ],
      [
        "gateway's check per receipt, signature sent: json · sse; fetched (other 0G providers): sse, mean (ms)",
        '–',
        '–',
        `${fmt(ver.nonStreamed.gatewayVerifierMs.mean, 3)} · ${fmt(ver.streamed.gatewayVerifierMs.mean, 3)}; ${fmt(ver.streamed.gatewayVerifierFetchedMs.mean, 3)}`,
        '–',
        '–',
        '–',
        '–',
      ],
      [
        `gateway's verifier (${ver.secp256k1}): receipts/s, many at once, json · sse`,
        '–',
        '–',
        `${ver.nonStreamed.gatewayVerifierChecksPerSecond} · ${ver.streamed.gatewayVerifierChecksPerSecond}`,
        '–',
        '–',
        '–',
        '–',
      ],
      [
        "gateway's check per answer · + signed receipt: CPU per answer, json · sse (ms)",
        '–',
        '–',
        `${fmt(cpuJson.checkCpuMs.processMs, 3)} · ${fmt(cpuSse.checkCpuMs.processMs, 3)}; ` +
          `${fmt(cpuJson.checkAndReceiptCpuMs.processMs, 3)} · ${fmt(cpuSse.checkAndReceiptCpuMs.processMs, 3)}`,
        `receipt ${plus(cpuJson.checkAndReceiptCpuMs.processMs - cpuJson.checkCpuMs.processMs, 3)} · ${plus(cpuSse.checkAndReceiptCpuMs.processMs - cpuSse.checkCpuMs.processMs, 3)}` +
          ` (signed with libsecp256k1: ${plus(cpuSse.checkAndNativeSignedReceiptCpuMs.processMs - cpuSse.checkCpuMs.processMs, 3)})`,
        '–',
        'check + receipt ≤ 1',
        verdict(checks.perResponseVerificationCpu.pass),
      ],
      [
        'quote verification per signer (TDX, worker): cold · warm mean / p50 (ms)',
        '–',
        '–',
        `${fmt(Q.coldMs, 1)} · ${fmt(Q.warmMs.mean, 2)} / ${fmt(Q.warmMs.p50, 2)}`,
        `caller CPU ${fmt(Q.warmCallingThreadCpuMs, 3)} ms/quote`,
        '–',
        'warm ≤ 20',
        verdict(checks.quoteVerificationWarm.pass),
      ],
      [
        'stream TTFB p50 / p99, c=1, gateway verification off → on (ms)',
        '–',
        '–',
        `${fmt(VT.offAfterOff.ttfbMs.p50, 3)} → ${fmt(VT.onAfterOn.ttfbMs.p50, 3)} / ${fmt(VT.offAfterOff.ttfbMs.p99, 3)} → ${fmt(VT.onAfterOn.ttfbMs.p99, 3)}`,
        `on − off ${plus(VT.ttfbOnMinusOffP50Ms, 3)} / ${plus(VT.ttfbOnMinusOffP99Ms, 3)} (mean ${plus(VT.ttfbOnMinusOffMeanMs, 3)})`,
        `on ${times(VT.onAfterOn.ttfbMs.p50, VT.offAfterOff.ttfbMs.p50)} off`,
        'unchanged (≤ +0.5)',
        verdict(checks.ttfbVerificationOnMinusOffP50.pass),
      ],
      [
        'scaling: a keyed call (budget, rpm), p50 c=1, store SQLite → Postgres (ms)',
        '–',
        '–',
        `${fmt(scaling.latency.sqlite.latencyMs.p50, 3)} → ${fmt(scaling.latency.postgres.latencyMs.p50, 3)}`,
        `Postgres ${plus(scaling.latency.postgresMinusSqliteP50Ms, 3)}`,
        `Postgres ${times(scaling.latency.postgres.latencyMs.p50, scaling.latency.sqlite.latencyMs.p50)} SQLite`,
        '(info)',
        '–',
      ],
      [
        `scaling: throughput, ${CONNECTIONS} conn: 1 gw SQLite · 1 gw Postgres · 2 gw Postgres (req/s)`,
        '–',
        fmt(T.node.rps, 0),
        `${fmt(scaling.throughput.sqlite.rps, 0)} · ${fmt(scaling.throughput.postgresOne.rps, 0)} · ${fmt(scaling.throughput.postgresTwoRps, 0)}`,
        `2 gw ÷ 1 gw ${fmt(scaling.throughput.twoOverOne, 2)}; Postgres ÷ SQLite ${fmt(scaling.throughput.postgresOverSqlite, 2)}`,
        `2 gw ${times(scaling.throughput.postgresTwoRps, T.node.rps)} node`,
        `(info: ${cpus().length} cores)`,
        '–',
      ],
    ]

    const stealPercent = steal.stop()
    const report = {
      issue: 5,
      createdAt: new Date().toISOString(),
      quick: QUICK,
      gatewayRunsFrom: FROM_SOURCE ? 'src (TypeScript, type stripping)' : 'dist (the bundle of npm run build)',
      machine: {
        node: process.version,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        memoryGB: Number((totalmem() / 2 ** 30).toFixed(1)),
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: loadavg().map((v) => Number(v.toFixed(2))),
        /** The same fixed work at the start of every run (bench/machine.ts): how fast the machine was. */
        calibration,
        /** Share of CPU time the hypervisor gave to other guests during the run, in percent (null off Linux). */
        stealPercent,
      },
      git: gitInfo(),
      setup: {
        chatModel: DEV_CHAT_MODEL,
        provider: fast.provider,
        nonStreamedBody: JSON.parse(chatBody(false)),
        streamedBody: JSON.parse(chatBody(true)),
        tokenDelayMs: { latencyAndThroughput: 0, streaming: TOKEN_DELAY_MS },
        params: P,
        connections: CONNECTIONS,
        notes: [
          'direct = the dev backend; provider node = the node the gateway routes to, called with a session token; gateway = gateway child process → that node.',
          'overheads are differences of percentiles: provider node − direct, gateway − provider node.',
          'the dev backend and the provider nodes share this process; the gateway and the load generator run in processes of their own; all on one 2-core machine.',
          'bare proxy: bench/bare-proxy.ts, node:http + undici passing bytes through, in front of the same node: the cost of one more Node HTTP hop.',
          "the node's settlement job runs before each measurement (its admission cost grew with unsettled records).",
          'verification (bench/verification.ts): CPU per answer is process.cpuUsage over n checks in a row (median of 5 rounds); the quote verifier runs the Intel TDX test vector; the first-byte A/B runs two extra gateway processes, verification on vs a no-op, same provider node (verificationTtfb.compares).',
        ],
      },
      checks,
      latency,
      latencySpaced: spaced,
      throughput,
      firstByte,
      hops,
      streaming,
      manyStreams: many,
      idleRss: { firstGateway: idle, secondGateway: idle2 },
      verification,
      verificationTtfb,
      scaling,
      ...(profiles ? { profiles } : {}),
      runSeconds: (performance.now() - started) / 1000,
    }
    const file = join(outDir, `report-${stamp}.json`)
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)

    console.log('')
    printTable(rows)
    console.log('')
    if (profiles) {
      for (const [name, p] of [
        ['gateway, gateway throughput load', profiles.gateway],
        ['provider node + backend, provider-node throughput load', profiles.providerNode],
        ['provider node + backend, gateway throughput load', profiles.providerNodeBehindGateway],
      ] as Array<[string, ProfileSummary & { file: string }]>) {
        console.log(`CPU profile, ${name} (${p.file}): busy ${p.busyPercent}% of ${p.totalMs} ms; top self time:`)
        for (const t of p.top.slice(0, 12)) console.log(`  ${String(t.percent).padStart(5)}%  ${t.fn}  ${t.where}`)
        console.log(`  by module: ${p.byModule.map((m) => `${m.module} ${m.percent}%`).join(', ')}`)
      }
      console.log('')
    }
    const failed = Object.entries(checks).filter(([, c]) => !c.pass)
    console.log(
      `machine: ${calibration.jsonMs} ms JSON · ${calibration.sha256Ms} ms sha256 (fixed work; lower is faster)` +
        (stealPercent === null ? '' : ` · ${stealPercent}% of CPU time stolen by the hypervisor during the run`),
    )
    console.log(`report: ${file}`)
    console.log(
      failed.length ? `targets missed: ${failed.map(([k]) => k).join(', ')}` : 'all targets met',
      `(${elapsed()})`,
    )
    if (STRICT && failed.length) process.exitCode = 1
  } catch (err) {
    console.error('bench failed:', (err as Error).stack ?? err)
    if (gateway?.log.length) console.error(`gateway log (last lines):\n${gateway.log.slice(-30).join('\n')}`)
    if (stackLog.length) console.error(`stack log (last lines):\n${stackLog.slice(-30).join('\n')}`)
    process.exitCode = 1
  } finally {
    await cleanup()
  }
}

function gitInfo() {
  try {
    const git = (...a: string[]) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim()
    return { commit: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain').length > 0 }
  } catch {
    return undefined
  }
}

await main()
