import { createHash, randomBytes } from 'node:crypto'
import type { JWTVerifyGetKey } from 'jose'
import type { Dispatcher } from 'undici'
import { type Address, bytesToHex, getAddress, type Hex, isAddressEqual } from 'viem'
import { fetchJsonGuarded, GuardedFetchError, guardedFetch } from '../http/guarded-json.ts'
import type { Collateral } from './dcap/collateral.ts'
import { CollateralSource, INTEL_PCS_URL } from './dcap/collateral-source.ts'
import { QuoteVerifier } from './dcap/quote-verifier.ts'
import { DEFAULT_TCB_POLICY, evaluateTcb, type TcbPolicy, type TcbVerdict } from './dcap/tcb-policy.ts'
import type { QuoteVerification, TcbStatus } from './dcap/verify-quote.ts'
import { type AttestationReport, parseAttestationReport } from './evidence/attestation-report.ts'
import { evaluateEvidence, type L3Result } from './evidence/l3.ts'
import type { MeasurementPolicy } from './evidence/measurement-policy.ts'
import type { NvidiaPayload } from './evidence/nvidia-payload.ts'
import { type BoundReportDataLayout, verifyReportDataBinding } from './report-data.ts'

/** tee-verification.md §6.1: L2 = the signer's key lives in a genuine TDX TD; L3 = plus the measured workload and GPUs. */
export type AttestationLevel = 'L2' | 'L3'

/**
 * The attested-signer record (tee-verification.md §6.2): what was checked for one (provider, signer), when, and the
 * level reached. Everything in it comes from the verified quote bytes, never from JSON served beside them.
 */
export type AttestationRecord = {
  provider: Address
  signer: Address
  /** null: not attested (no TEE, a failed check, or the check could not run); `reasons` says which. */
  level: AttestationLevel | null
  /** Why the level is not higher (empty at L3). */
  reasons: string[]
  /** What the provider claims: `none` is an honest dev signer; `unknown` when no report was read. */
  tee: 'intel-tdx' | 'none' | 'unknown'
  /** The endpoint that served the report. */
  source: 'attestation-report' | 'quote' | null
  format: AttestationReport['format'] | null
  layout: BoundReportDataLayout | null
  /** report_data binds our nonce: the quote was made for this check, not replayed from startup. */
  fresh: boolean
  /** The 32-byte nonce we sent. */
  nonce: Hex
  quoteSha256: Hex | null
  tcbStatus: TcbStatus | null
  advisories: string[]
  mrTd: Hex | null
  rtmrs: [Hex, Hex, Hex, Hex] | null
  /** The compose-hash event, bound by the RTMR3 replay (only set when the replay matched). */
  composeHash?: Hex
  /** GPUs with evidence in the report. */
  gpus?: number
  /** Unix ms. */
  verifiedAt: number
  expiresAt: number
  /** sha256 of the record's canonical JSON (sorted keys) without recordHash: what receipts cite. */
  recordHash: Hex
}

/** A record and every check behind it, for a full report (`providers verify`). */
export type AttestationOutcome = {
  record: AttestationRecord
  quote?: QuoteVerification
  tcb?: TcbVerdict
  evidence?: L3Result
  /** True when the collateral's CRL dates were not checked (a caller's explicit choice). */
  crlDatesSkipped?: boolean
}

export type SignerEntry = { provider: Address; url: string; teeSignerAddress: Address }

/** Collateral for a quote: a CollateralSource (PCS/PCCS with a disk cache) or any function, e.g. a fixed file. */
export type CollateralProvider = CollateralSource | ((quote: Uint8Array, now: Date) => Promise<Collateral>)

/** Intel PCS (default) or a PCCS, fetched through the guarded agent, cached on disk under `cacheDir`. */
export function guardedCollateralSource(
  dispatcher: Dispatcher,
  opts: { baseUrl?: string; cacheDir: string },
): CollateralSource {
  // Intel's collateral for one platform is a few hundred kB at most.
  return new CollateralSource({
    baseUrl: opts.baseUrl ?? INTEL_PCS_URL,
    cacheDir: opts.cacheDir,
    fetch: guardedFetch(dispatcher, { timeoutMs: 30_000, maxBytes: 4 * 1024 * 1024 }),
  })
}

export type SignerAttestationsOptions = {
  /** The guarded provider agent (createProviderAgent): every fetch goes through it. */
  dispatcher: Dispatcher
  /** Default: one of our own, closed by close(). */
  quotes?: QuoteVerifier
  collateral: CollateralProvider
  tcbPolicy?: TcbPolicy
  /** L3 allowlists; absent lists leave values unconstrained (the evidence result says which). */
  measurementPolicy?: MeasurementPolicy
  /** L3 fails without GPU evidence; default false (a 0G broker serves none), the record counts the GPUs. */
  requireGpu?: boolean
  /** NRAS: `attest` sends the payload to NVIDIA and answers the EAT, checked with `keys` (JwksSource.keyGetter). */
  nras?: { attest: (payload: NvidiaPayload, nonce: string) => Promise<unknown>; keys: JWTVerifyGetKey }
  /** Default true; off only for collateral whose CRLs are known stale (a test capture). */
  checkCrlDates?: boolean
  now?: () => Date
  /** How long a record stays valid; default 1 h. */
  ttlMs?: number
  /** How long a failure is remembered, so a bad provider is not re-fetched on every request; default 5 min. */
  failureTtlMs?: number
  /** Report size cap; default 4 MiB. */
  maxReportBytes?: number
  /** Per report fetch; default 15 s. */
  timeoutMs?: number
  log?: (line: string) => void
}

/**
 * Per-signer attestation (tee-verification.md §6.2): on first sight of (provider, signer) or on expiry, fetch a
 * report bound to a fresh nonce, verify the quote (DCAP in a worker, TCB policy, report_data binding: L2), then the
 * workload evidence (L3), and keep the record so the request path only does a map lookup.
 */
export class SignerAttestations {
  readonly #opts: SignerAttestationsOptions
  readonly #quotes: QuoteVerifier
  readonly #ownsQuotes: boolean
  readonly #now: () => Date
  readonly #records = new Map<string, AttestationRecord>()
  readonly #inflight = new Map<string, Promise<AttestationOutcome>>()

  constructor(opts: SignerAttestationsOptions) {
    this.#opts = opts
    this.#ownsQuotes = opts.quotes === undefined
    this.#quotes = opts.quotes ?? new QuoteVerifier()
    this.#now = opts.now ?? (() => new Date())
  }

  /** The cached record for this provider+signer while it is valid (whatever its level), or undefined. */
  known(provider: Address, signer: Address): AttestationRecord | undefined {
    const key = keyOf(provider, signer)
    const record = this.#records.get(key)
    if (!record) return undefined
    if (record.expiresAt > this.#now().getTime()) return record
    this.#records.delete(key)
    return undefined
  }

  /** The cached record, or a new attestation (concurrent calls for one provider+signer share one run). */
  async attest(entry: SignerEntry): Promise<AttestationRecord> {
    return this.known(entry.provider, entry.teeSignerAddress) ?? (await this.inspect(entry)).record
  }

  /** Attests now, bypassing the cache (but sharing a run in progress), and keeps the record; returns every check. */
  inspect(entry: SignerEntry): Promise<AttestationOutcome> {
    const key = keyOf(entry.provider, entry.teeSignerAddress)
    const running = this.#inflight.get(key)
    if (running) return running
    const run = this.#run(entry)
      .then((outcome) => {
        this.#records.set(key, outcome.record)
        return outcome
      })
      .finally(() => this.#inflight.delete(key))
    this.#inflight.set(key, run)
    return run
  }

  async close(): Promise<void> {
    if (this.#ownsQuotes) await this.#quotes.close()
  }

  async #run(entry: SignerEntry): Promise<AttestationOutcome> {
    const signer = getAddress(entry.teeSignerAddress)
    const nonce = bytesToHex(randomBytes(32))
    const draft = blankRecord(getAddress(entry.provider), signer, nonce)
    const finish = (extra: Omit<AttestationOutcome, 'record'> = {}): AttestationOutcome => {
      const record = this.#seal(draft)
      this.#opts.log?.(
        `attestation ${record.provider} signer ${record.signer}: ${record.level ?? 'not attested'}${record.reasons.length ? ` (${record.reasons.join('; ')})` : ''}`,
      )
      return { record, ...extra }
    }

    let fetched: { body: Record<string, unknown>; source: 'attestation-report' | 'quote' }
    try {
      fetched = await this.#fetchReport(entry.url, signer, nonce)
    } catch (err) {
      draft.reasons.push(`no attestation report: ${(err as Error).message}`)
      return finish()
    }
    draft.source = fetched.source
    const body = fetched.body
    if (body.tee === 'none' || body.quote === null) {
      draft.tee = 'none'
      draft.reasons.push(`no TEE: ${typeof body.message === 'string' ? body.message : 'the provider serves no quote'}`)
      return finish()
    }

    let report: AttestationReport
    try {
      report = parseAttestationReport(body)
    } catch (err) {
      draft.reasons.push(`unreadable attestation report: ${(err as Error).message}`)
      return finish()
    }
    draft.tee = 'intel-tdx'
    draft.format = report.format
    draft.quoteSha256 = `0x${createHash('sha256').update(report.quoteBytes).digest('hex')}`
    draft.gpus = report.nvidiaPayload?.evidenceList.length
    if (report.signingAddress !== undefined && !sameAddress(report.signingAddress, signer)) {
      draft.reasons.push(`the report names signer ${report.signingAddress}, not the on-chain ${signer}`)
      return finish()
    }

    const now = this.#now()
    let quote: QuoteVerification
    try {
      const collateral = await this.#collateral(report.quoteBytes, now)
      quote = await this.#quotes.verify(report.quoteBytes, collateral, now, {
        checkCrlDates: this.#opts.checkCrlDates ?? true,
      })
    } catch (err) {
      draft.reasons.push(`DCAP: ${(err as Error).message}`)
      return finish()
    }
    const crlDatesSkipped = !quote.crlDatesChecked
    if (crlDatesSkipped)
      this.#opts.log?.(`attestation ${draft.provider}: collateral CRL dates NOT checked (configured off)`)
    draft.tcbStatus = quote.status
    draft.advisories = quote.advisoryIds
    if (quote.td) {
      draft.mrTd = quote.td.mrTd
      draft.rtmrs = quote.td.rtmrs
    }
    const tcb = evaluateTcb(quote, this.#opts.tcbPolicy ?? DEFAULT_TCB_POLICY)
    if (!tcb.ok) draft.reasons.push(tcb.reason)
    if (!quote.td) draft.reasons.push(`not a TDX quote (${quote.reportType})`)
    try {
      const binding = verifyReportDataBinding(quote.reportData, { signer, nonce })
      draft.layout = binding.layout
      draft.fresh = binding.fresh
      if (!binding.fresh && hasNonceSlot(binding.layout)) {
        draft.reasons.push(
          `report_data binds nonce ${bytesToHex(quote.reportData.subarray(32))}, not ours: a replayed report`,
        )
      }
    } catch (err) {
      draft.reasons.push(`report_data: ${(err as Error).message}`)
    }
    if (draft.reasons.length > 0 || !quote.td) return finish({ quote, tcb, crlDatesSkipped })

    draft.level = 'L2'
    if (!draft.fresh) {
      draft.reasons.push(
        `L2-stale: the ${draft.layout} layout has no nonce, so the quote may be a replayed startup one`,
      )
    }
    const evidence = await this.#evidence(report, quote, nonce, now)
    if (evidence.rtmrReplay.ok && evidence.compose.composeHash) draft.composeHash = `0x${evidence.compose.composeHash}`
    draft.reasons.push(...evidence.reasons.map((r) => `L3: ${r}`))
    if (evidence.ok && draft.fresh) draft.level = 'L3'
    return finish({ quote, tcb, evidence, crlDatesSkipped })
  }

  /**
   * vllm-proxy's nonce-capable report first; 0G brokers' `/v1/quote` (a startup quote, no nonce) when that path is
   * not served. A redirect, a timeout or an oversized answer is a failure, never a reason to try elsewhere.
   */
  async #fetchReport(
    url: string,
    signer: Address,
    nonce: Hex,
  ): Promise<{ body: Record<string, unknown>; source: 'attestation-report' | 'quote' }> {
    const options = {
      timeoutMs: this.#opts.timeoutMs ?? 15_000,
      maxBytes: this.#opts.maxReportBytes ?? 4 * 1024 * 1024,
    }
    const base = url.replace(/\/+$/, '')
    const report = await fetchJsonGuarded(
      this.#opts.dispatcher,
      `${base}/v1/proxy/attestation/report?nonce=${nonce}&signing_address=${signer}`,
      options,
    )
    if (report.status === 200)
      return { body: objectBody(report.json, 'attestation report'), source: 'attestation-report' }
    const quote = await fetchJsonGuarded(this.#opts.dispatcher, `${base}/v1/quote`, options)
    if (quote.status === 200) return { body: objectBody(quote.json, 'quote'), source: 'quote' }
    throw new GuardedFetchError(
      'network',
      base,
      `the attestation report answered ${report.status} and /v1/quote ${quote.status}`,
    )
  }

  async #collateral(quote: Uint8Array, now: Date): Promise<Collateral> {
    const source = this.#opts.collateral
    if (typeof source === 'function') return source(quote, now)
    return (await source.forQuote(quote, now)).collateral
  }

  async #evidence(report: AttestationReport, quote: QuoteVerification, nonce: Hex, now: Date): Promise<L3Result> {
    const td = quote.td!
    const strip = (h: Hex) => h.slice(2)
    let nras: { eat: unknown; keys: JWTVerifyGetKey } | undefined
    const nrasReasons: string[] = []
    if (this.#opts.nras && report.nvidiaPayload) {
      try {
        nras = { eat: await this.#opts.nras.attest(report.nvidiaPayload, strip(nonce)), keys: this.#opts.nras.keys }
      } catch (err) {
        nrasReasons.push(`NRAS unavailable: ${(err as Error).message}`)
      }
    }
    const result = await evaluateEvidence({
      report,
      quote: {
        mrTd: strip(td.mrTd),
        rtmrs: td.rtmrs.map(strip) as [string, string, string, string],
        mrConfigId: strip(td.mrConfigId),
      },
      nonce: strip(nonce),
      policy: this.#opts.measurementPolicy ?? {},
      now,
      nras,
      requireGpu: this.#opts.requireGpu ?? false,
    })
    if (nrasReasons.length === 0) return result
    return { ...result, ok: false, reasons: [...result.reasons, ...nrasReasons] }
  }

  #seal(draft: Omit<AttestationRecord, 'recordHash' | 'verifiedAt' | 'expiresAt'>): AttestationRecord {
    const verifiedAt = this.#now().getTime()
    const ttl = draft.level === null ? (this.#opts.failureTtlMs ?? 5 * 60_000) : (this.#opts.ttlMs ?? 60 * 60_000)
    const unsealed = { ...draft, verifiedAt, expiresAt: verifiedAt + ttl }
    return { ...unsealed, recordHash: recordHashOf(unsealed) }
  }
}

/** sha256 of the canonical JSON (keys sorted at every depth, undefined members left out) of a record minus its hash. */
export function recordHashOf(record: Omit<AttestationRecord, 'recordHash'> | AttestationRecord): Hex {
  const { recordHash: _, ...rest } = record as AttestationRecord
  return `0x${createHash('sha256').update(canonicalJson(rest)).digest('hex')}`
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${members.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

type Draft = Omit<AttestationRecord, 'recordHash' | 'verifiedAt' | 'expiresAt'>

function blankRecord(provider: Address, signer: Address, nonce: Hex): Draft {
  return {
    provider,
    signer,
    level: null,
    reasons: [],
    tee: 'unknown',
    source: null,
    format: null,
    layout: null,
    fresh: false,
    nonce,
    quoteSha256: null,
    tcbStatus: null,
    advisories: [],
    mrTd: null,
    rtmrs: null,
  }
}

/** Layouts with a slot for the verifier's nonce: one that is not ours there means a replay. */
function hasNonceSlot(layout: BoundReportDataLayout): boolean {
  return layout === 'signer-nonce' || layout === 'signer-tls-nonce'
}

function keyOf(provider: Address, signer: Address): string {
  return `${provider.toLowerCase()}/${signer.toLowerCase()}`
}

function sameAddress(a: string, b: Address): boolean {
  try {
    return isAddressEqual(a as Address, b)
  } catch {
    return false
  }
}

function objectBody(json: unknown, what: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new GuardedFetchError('not-json', what, `the ${what} is not a JSON object`)
  }
  return json as Record<string, unknown>
}
