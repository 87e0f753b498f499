/**
 * What verification costs (issue: per-response check ≤ 1 ms CPU, quote verification ≤ 20 ms once per signer, stream
 * first byte unchanged with verification on), for bench/run.ts:
 *
 * - responseCpu: CPU time per response of the gateway's check (DeliveryVerifier.verify) and of the check plus its
 *   signed receipt (signedReceipt, viem's signMessage with the dev wallet, as the gateway signs), n in a row.
 * - quoteVerificationCost: the DCAP quote verifier (QuoteVerifier, a worker thread) over the Intel TDX test vector,
 *   cold (worker start + first quote) and warm, with what it costs the calling thread.
 * - startVerificationGateway: a gateway in a child process of its own (this file, forked with `gateway`), the
 *   dev stack's gateway as bench/gateway-process.mjs starts it, with its per-response verification and receipt
 *   signing on, or replaced by a no-op: the two arms of the first-byte A/B in run.ts.
 *
 * The heavy modules are imported where they are used, so that the gateway child loads only the gateway.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Address, Hex, LocalAccount } from 'viem'
import type { Receipt } from '../src/attestation/response-verifier.ts'
import type { CallRecord } from '../src/billing/usage-ledger.ts'
import type { Delivery } from '../src/gateway/delivery-verifier.ts'
import type { CatalogEntry } from '../src/providers/catalog.ts'
import { type Dist, dist, rounded } from './stats.ts'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = dirname(HERE)

// ---------------------------------------------------------------------------------------------------------------
// Per-response CPU

type CpuPerCall = { processMs: number; threadMs: number }

/**
 * CPU ms (user + system) per call of `fn`, n calls one after the other in `rounds` rounds: the whole process's
 * (process.cpuUsage, GC threads included) and this thread's, each the median of the rounds' (other work on the
 * machine slows some rounds), with every round's.
 */
export async function cpuPerCall(
  n: number,
  fn: () => Promise<unknown>,
  rounds = 5,
): Promise<CpuPerCall & { rounds: CpuPerCall[] }> {
  const per = Math.max(1, Math.round(n / rounds))
  const ms = (u: { user: number; system: number }) => Number(((u.user + u.system) / 1000 / per).toFixed(4))
  const out: CpuPerCall[] = []
  for (let r = 0; r < rounds; r++) {
    const p0 = process.cpuUsage()
    const t0 = process.threadCpuUsage()
    for (let i = 0; i < per; i++) await fn()
    out.push({ processMs: ms(process.cpuUsage(p0)), threadMs: ms(process.threadCpuUsage(t0)) })
  }
  const median = (k: keyof CpuPerCall) => out.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(rounds / 2)]!
  return { processMs: median('processMs'), threadMs: median('threadMs'), rounds: out }
}

/** What the gateway knows of the call and of its provider when it signs the receipt (src/gateway/forward.ts). */
export function receiptInputs(p: {
  provider: Address
  nodeUrl: string
  signer: Address
  model: string
  resKey: string
}) {
  const entry: CatalogEntry = {
    provider: p.provider,
    serviceType: 'chatbot',
    url: p.nodeUrl,
    model: p.model,
    models: [p.model],
    inputPrice: 50_000_000_000n,
    outputPrice: 100_000_000_000n,
    verifiability: 'TeeML',
    teeSignerAddress: p.signer,
    teeSignerAcknowledged: true,
    additionalInfo: { raw: '', valid: false, extra: {} },
    updatedAt: 0n,
    healthy: true,
  }
  const call: CallRecord = {
    requestId: 'chatcmpl-bench-0123456789abcdef',
    createdAt: Date.now(),
    apiKeyId: 'dev',
    provider: p.provider,
    model: p.model,
    endpoint: 'chat/completions',
    stream: true,
    status: 200,
    inputUnits: 30n,
    outputUnits: 32n,
    fee: 4_700_000_000_000n,
    resKey: p.resKey,
    latencyMs: 700,
    deliveredBytes: 4000,
    verification: 'pending',
    verificationLevel: null,
    verificationDetail: null,
  }
  return { entry, call }
}

/**
 * CPU per response of the gateway's check (`check`, the gateway's way: both hashes, the signature the node sent,
 * recovery) alone, and followed by its signed receipt, as src/gateway/forward.ts does off the request path.
 */
export async function responseCpu(
  n: number,
  check: () => Promise<Receipt>,
  inputs: ReturnType<typeof receiptInputs>,
  wallet: LocalAccount,
  walletKey: Hex,
) {
  const { signedReceipt } = await import('../src/gateway/receipts.ts')
  const { verifySignedReceipt } = await import('../src/attestation/signed-receipt.ts')
  const { personalMessageDigest, signDigest } = await import('../src/chain/secp256k1.ts')
  const withReceipt = async () =>
    signedReceipt(wallet, inputs.call, inputs.entry, await check(), { catalog: { syncedBlock: 1n } })
  const sample = await withReceipt()
  const ok = await verifySignedReceipt(JSON.parse(sample.text), { gateway: wallet.address })
  if (!ok.ok || ok.providerSignature !== 'valid' || sample.level !== 'L1')
    throw new Error(`the bench's signed receipt does not check: ${ok.ok ? ok.providerSignature : ok.reason}`)
  // For reference: the same receipt signed through src/chain/secp256k1.ts (libsecp256k1 when it loads) rather than
  // viem's signMessage (JavaScript): the payload's JSON, its EIP-191 digest and the signature.
  const payload = JSON.parse((JSON.parse(sample.text) as { payload: string }).payload) as unknown
  const withNativeReceipt = async () => {
    await check()
    return signDigest(personalMessageDigest(JSON.stringify(payload)), walletKey)
  }
  // Warm-up (JIT), then the measured runs.
  for (let i = 0; i < 50; i++) {
    await withReceipt()
    await withNativeReceipt()
  }
  return {
    /** The check alone. */
    checkCpuMs: await cpuPerCall(n, check),
    /** The check and its signed receipt: what each answer costs the gateway. */
    checkAndReceiptCpuMs: await cpuPerCall(n, withReceipt),
    /** Reference, not what the gateway does: the check and the same receipt signed with libsecp256k1. */
    checkAndNativeSignedReceiptCpuMs: await cpuPerCall(n, withNativeReceipt),
    receiptBytes: sample.text.length,
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Quote verification

const QUOTE_NOW = new Date('2025-07-04T00:00:00Z')

/**
 * The DCAP quote verifier over the TDX test vector (test/fixtures/tee-vectors): a fresh QuoteVerifier's first
 * verify (the worker thread starts), then `n` more one at a time. The worker is the bundle's (dist/), as the
 * gateway runs it, unless the gateway runs from source. CPU of this thread shows what the calling event loop pays.
 */
export async function quoteVerificationCost(n: number, fromSource: boolean) {
  const { QuoteVerifier } = await import('../src/attestation/dcap/quote-verifier.ts')
  const { parseCollateral } = await import('../src/attestation/dcap/collateral.ts')
  const dir = join(ROOT, 'test/fixtures/tee-vectors/intel-dcap')
  const quote = new Uint8Array(readFileSync(join(dir, 'tdx_quote.bin')))
  const collateral = parseCollateral(JSON.parse(readFileSync(join(dir, 'tdx_quote_collateral.json'), 'utf8')))
  const distWorker = join(ROOT, 'dist/attestation/dcap/quote-worker.js')
  const useDist = !fromSource && existsSync(distWorker)
  const verifier = new QuoteVerifier(useDist ? { workerUrl: pathToFileURL(distWorker) } : {})
  try {
    const once = async () => {
      const r = await verifier.verify(quote, collateral, QUOTE_NOW)
      if (r.status !== 'UpToDate') throw new Error(`the TDX test quote verified as ${r.status}, not UpToDate`)
    }
    let t = performance.now()
    let p0 = process.cpuUsage()
    let t0 = process.threadCpuUsage()
    await once()
    const coldMs = performance.now() - t
    const coldThread = process.threadCpuUsage(t0)
    const coldProcess = process.cpuUsage(p0)
    const warm = new Float64Array(n)
    p0 = process.cpuUsage()
    t0 = process.threadCpuUsage()
    for (let i = 0; i < n; i++) {
      t = performance.now()
      await once()
      warm[i] = performance.now() - t
    }
    const thread = process.threadCpuUsage(t0)
    const proc = process.cpuUsage(p0)
    const ms = (u: { user: number; system: number }, k = 1) => Number(((u.user + u.system) / 1000 / k).toFixed(3))
    return {
      worker: useDist ? 'dist/attestation/dcap/quote-worker.js' : 'src/attestation/dcap/quote-worker.ts',
      quote: 'intel-dcap/tdx_quote.bin',
      now: QUOTE_NOW.toISOString(),
      /** A fresh verifier's first quote, wall time: the worker thread starts and loads, then verifies. */
      coldMs: Number(coldMs.toFixed(2)),
      coldCallingThreadCpuMs: ms(coldThread),
      coldProcessCpuMs: ms(coldProcess),
      /** Each further quote, one at a time, wall time as the caller awaits it. */
      warmMs: rounded(dist(warm), 3) as Dist,
      /** CPU of the calling thread per warm quote (the work is the worker's). */
      warmCallingThreadCpuMs: ms(thread, n),
      /** CPU of the whole process per warm quote: the worker's work and the messages. */
      warmProcessCpuMs: ms(proc, n),
      /** The difference: the worker's (and GC threads') CPU per quote. */
      warmOtherThreadsCpuMs: Number((ms(proc, n) - ms(thread, n)).toFixed(3)),
    }
  } finally {
    await verifier.close()
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A gateway with its verification on or off (the first-byte A/B)

type ChildConfig = {
  dataDir: string
  name: string
  walletKey: Hex
  devKey: string
  verification: boolean
  fromSource: boolean
}
type ChildMessage =
  | { ready: true; url: string; pid: number }
  | { stats: { checks: Record<string, number>; receiptsSigned: number } }
  | { error: string }

export type VerificationGateway = {
  url: string
  pid: number
  verification: boolean
  /** Checks by status and receipts signed so far. */
  stats(): Promise<{ checks: Record<string, number>; receiptsSigned: number }>
  stop(): Promise<void>
}

/**
 * A gateway in a child process of its own (this file), as bench/gateway-process.mjs starts it (the bundle unless
 * `fromSource`, the dev wallet and key, private URLs allowed), with its own data dir under `dataDir`, and with
 * neither auto-funding nor reconciliation: two of them beside the bench's main gateway send no transactions from
 * the same wallet. With `verification: false` its per-response check is a no-op that answers at once and it signs
 * no receipt: all else is the same in both.
 */
export async function startVerificationGateway(cfg: ChildConfig): Promise<VerificationGateway> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['gateway'], {
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  })
  const log: string[] = []
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (d: string) => {
    log.push(...d.split('\n').filter(Boolean))
    if (log.length > 100) log.splice(0, log.length - 100)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const ready = await new Promise<{ url: string; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway ${cfg.name} did not start within 60 s`)), 60_000)
    child.on('message', (m: ChildMessage) => {
      if ('ready' in m) {
        clearTimeout(timer)
        resolve(m)
      } else if ('error' in m) {
        clearTimeout(timer)
        reject(new Error(`gateway ${cfg.name} failed to start: ${m.error}`))
      }
    })
    child.once('exit', (code) => reject(new Error(`gateway ${cfg.name} exited with ${code}: ${log.join('\n')}`)))
    child.send(cfg)
  })
  return {
    ...ready,
    verification: cfg.verification,
    stats: () =>
      new Promise((resolve) => {
        const on = (m: ChildMessage) => {
          if (!('stats' in m)) return
          child.off('message', on)
          resolve(m.stats)
        }
        child.on('message', on)
        child.send({ stats: true })
      }),
    async stop() {
      if (child.exitCode !== null) return
      child.send({ stop: true })
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}

async function gatewayChild(cfg: ChildConfig) {
  // A variable specifier: the bundle has no types of its own here; it has the sources' API.
  const spec = cfg.fromSource ? '../src/index.ts' : '../dist/index.js'
  const lib = (await import(spec)) as typeof import('../src/index.ts')
  const info = JSON.parse(readFileSync(join(cfg.dataDir, 'devnet.json'), 'utf8'))
  const network = lib.customNetwork({
    name: 'devnet',
    chainId: info.chainId,
    rpcUrl: info.rpcUrl,
    contracts: { ledger: info.contracts.ledger, inference: info.contracts.inference },
  })
  const wallet = await lib.loadWallet({ env: { ZG_PRIVATE_KEY: cfg.walletKey } })
  if (!wallet) throw new Error('no wallet')
  const gateway = await lib.createGateway({
    network,
    wallet,
    dataDir: join(cfg.dataDir, cfg.name),
    port: 0,
    devKey: cfg.devKey,
    allowPrivateUrls: true,
    autoFund: false,
    reconciliation: false,
    log: (line) => process.stderr.write(`${line}\n`),
  })
  const core = gateway.core
  const checks: Record<string, number> = {}
  let receiptsSigned = 0
  if (cfg.verification) {
    // Counted, as run.ts reports how many answers were checked and signed; a counter is all these wrappers add.
    const verifier = core.verifier
    const verify = verifier.verify.bind(verifier)
    verifier.verify = async (d: Delivery) => {
      const r = await verify(d)
      checks[r.status] = (checks[r.status] ?? 0) + 1
      return r
    }
    const signer = core.receiptSigner!
    core.receiptSigner = {
      address: signer.address,
      signMessage: (args) => {
        receiptsSigned++
        return signer.signMessage(args)
      },
    }
  } else {
    core.verifier = {
      verify: async () => {
        checks.off = (checks.off ?? 0) + 1
        return { status: 'unverifiable', level: null, detail: 'bench: verification off' }
      },
      close: async () => undefined,
    } as unknown as typeof core.verifier
    core.receiptSigner = undefined
  }
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await gateway.close().catch(() => undefined)
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('disconnect', stop)
  process.on('message', (m: { stop?: true; stats?: true }) => {
    if (m.stop) void stop()
    else if (m.stats) process.send?.({ stats: { checks, receiptsSigned } } satisfies ChildMessage)
  })
  process.send?.({ ready: true, url: gateway.url, pid: process.pid } satisfies ChildMessage)
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'gateway') {
  process.once('message', (cfg: ChildConfig) => {
    gatewayChild(cfg).catch((err: Error) => {
      process.send?.({ error: err?.stack ?? String(err) } satisfies ChildMessage, () => process.exit(1))
    })
  })
}
