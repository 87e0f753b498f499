import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Collateral, CollateralError, collateralWindow, parseCollateral } from './collateral.ts'
import { type QuotePlatform, quotePlatform } from './quote-platform.ts'

/** The one call CollateralSource makes; the gateway passes its guarded client, tests a plain one. */
export type FetchLike = (url: string, init: { signal: AbortSignal; redirect: 'error' }) => Promise<Response>

export const INTEL_PCS_URL = 'https://api.trustedservices.intel.com'
/** Where Intel PCS users get the root CA CRL (the CRL distribution point of the Intel SGX Root CA certificate). */
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der'

export type CollateralSourceOptions = {
  /** Intel PCS (default) or a PCCS serving the same v4 API, e.g. https://pccs.phala.network. */
  baseUrl?: string
  /** Root CA CRL URL: Intel's distribution point for Intel PCS, `{baseUrl}/sgx/certification/v4/rootcacrl` otherwise. */
  rootCaCrlUrl?: string
  /** Directory for the on-disk cache; without it only memory caches. */
  cacheDir?: string
  fetch?: FetchLike
  timeoutMs?: number
  /** Per response; PCK CRLs are the largest piece, tens of KB. */
  maxBytes?: number
}

export type CollateralLookup = {
  collateral: Collateral
  platform: QuotePlatform
  /** `stale-cache`: the fetch failed and the last good copy, past its nextUpdate, is returned for the caller to judge. */
  source: 'memory' | 'disk' | 'network' | 'stale-cache'
}

/**
 * Intel collateral for a quote, fetched with the Intel PCS v4 API (the requests dcap-qvl's own fetcher makes) and
 * cached per TEE + FMSPC + CA until the earliest nextUpdate of its parts (tee-verification.md §6.2). When a refresh
 * fails the last good copy is returned: verification then decides (an expired copy fails with "TCBInfo expired",
 * an infrastructure failure rather than a provider fault).
 */
export class CollateralSource {
  readonly #base: string
  readonly #rootCaCrlUrl: string
  readonly #cacheDir: string | undefined
  readonly #fetch: FetchLike
  readonly #timeoutMs: number
  readonly #maxBytes: number
  readonly #memory = new Map<string, Collateral>()

  constructor(options: CollateralSourceOptions = {}) {
    this.#base = (options.baseUrl ?? INTEL_PCS_URL).replace(/\/+$/, '')
    this.#rootCaCrlUrl =
      options.rootCaCrlUrl ??
      (this.#base === INTEL_PCS_URL ? INTEL_ROOT_CA_CRL_URL : `${this.#base}/sgx/certification/v4/rootcacrl`)
    this.#cacheDir = options.cacheDir
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init))
    this.#timeoutMs = options.timeoutMs ?? 15_000
    this.#maxBytes = options.maxBytes ?? 4 * 1024 * 1024
  }

  async forQuote(quote: Uint8Array, now: Date = new Date()): Promise<CollateralLookup> {
    const platform = quotePlatform(quote)
    const key = `${platform.tee}-${platform.fmspc}-${platform.ca}`
    const remembered = this.#memory.get(key)
    if (remembered && usable(remembered, now)) return { collateral: remembered, platform, source: 'memory' }
    const stored = remembered ?? (await this.#readDisk(key))
    if (stored && usable(stored, now)) {
      this.#memory.set(key, stored)
      return { collateral: stored, platform, source: 'disk' }
    }
    try {
      const fresh = await this.#download(platform)
      this.#memory.set(key, fresh)
      await this.#writeDisk(key, fresh)
      return { collateral: fresh, platform, source: 'network' }
    } catch (err) {
      if (stored) return { collateral: stored, platform, source: 'stale-cache' }
      throw err
    }
  }

  async #download({ tee, fmspc, ca }: QuotePlatform): Promise<Collateral> {
    const v4 = (t: string) => `${this.#base}/${t}/certification/v4`
    const [pckCrl, tcb, qe, rootCrl] = await Promise.all([
      this.#get(`${v4('sgx')}/pckcrl?ca=${ca}&encoding=der`),
      this.#get(`${v4(tee)}/tcb?fmspc=${fmspc}`),
      this.#get(`${v4(tee)}/qe/identity?update=standard`),
      this.#get(this.#rootCaCrlUrl),
    ])
    const tcbText = tcb.body.toString('utf8')
    const qeText = qe.body.toString('utf8')
    return parseCollateral({
      pck_crl_issuer_chain: header(pckCrl.headers, 'SGX-PCK-CRL-Issuer-Chain'),
      pck_crl: pckCrl.body.toString('hex'),
      // Intel PCS names it TCB-Info-Issuer-Chain, older PCCS versions SGX-TCB-Info-Issuer-Chain.
      tcb_info_issuer_chain:
        tcb.headers.get('TCB-Info-Issuer-Chain') !== null
          ? header(tcb.headers, 'TCB-Info-Issuer-Chain')
          : header(tcb.headers, 'SGX-TCB-Info-Issuer-Chain'),
      tcb_info: rawJsonMember(tcbText, 'tcbInfo'),
      tcb_info_signature: signatureOf(tcbText),
      qe_identity_issuer_chain: header(qe.headers, 'SGX-Enclave-Identity-Issuer-Chain'),
      qe_identity: rawJsonMember(qeText, 'enclaveIdentity'),
      qe_identity_signature: signatureOf(qeText),
      // A PCCS answers hex text, Intel's distribution point DER.
      root_ca_crl: rootCrl.body[0] === 0x30 ? rootCrl.body.toString('hex') : rootCrl.body.toString('utf8').trim(),
    })
  }

  async #get(url: string): Promise<{ headers: Headers; body: Buffer }> {
    const res = await this.#fetch(url, { signal: AbortSignal.timeout(this.#timeoutMs), redirect: 'error' })
    if (!res.ok) {
      await res.body?.cancel()
      throw new CollateralError(`GET ${url}: HTTP ${res.status}`)
    }
    const chunks: Uint8Array[] = []
    let size = 0
    for await (const chunk of res.body ?? []) {
      size += chunk.byteLength
      if (size > this.#maxBytes) throw new CollateralError(`GET ${url}: response larger than ${this.#maxBytes} bytes`)
      chunks.push(chunk)
    }
    return { headers: res.headers, body: Buffer.concat(chunks) }
  }

  async #readDisk(key: string): Promise<Collateral | undefined> {
    if (!this.#cacheDir) return undefined
    try {
      return parseCollateral(JSON.parse(await readFile(join(this.#cacheDir, `${key}.json`), 'utf8')))
    } catch {
      return undefined
    }
  }

  async #writeDisk(key: string, collateral: Collateral): Promise<void> {
    if (!this.#cacheDir) return
    await mkdir(this.#cacheDir, { recursive: true })
    const file = join(this.#cacheDir, `${key}.json`)
    // Written aside and renamed, so a crash never leaves a half file that would shadow the last good copy.
    await writeFile(`${file}.tmp`, JSON.stringify(collateral))
    await rename(`${file}.tmp`, file)
  }
}

function usable(collateral: Collateral, now: Date): boolean {
  try {
    const { notBefore, notAfter } = collateralWindow(collateral)
    return now >= notBefore && now <= notAfter
  } catch {
    return false
  }
}

/** PCS issuer chains are URL-encoded PEM in a header. */
function header(headers: Headers, name: string): string {
  const value = headers.get(name)
  if (value === null) throw new CollateralError(`collateral response has no ${name} header`)
  return decodeURIComponent(value)
}

function signatureOf(body: string): string {
  const signature = (JSON.parse(body) as { signature?: unknown }).signature
  if (typeof signature !== 'string') throw new CollateralError('collateral response has no signature')
  return signature
}

/**
 * The exact text of a top-level member's object value: Intel signs those bytes, so a JSON.parse/stringify round
 * trip (what dcap-qvl's fetcher does) would break the signature as soon as Intel's spacing or key order differed.
 */
export function rawJsonMember(text: string, key: string): string {
  const match =
    new RegExp(`^\\s*\\{\\s*"${key}"\\s*:\\s*`).exec(text) ?? new RegExp(`,\\s*"${key}"\\s*:\\s*`).exec(text)
  if (!match) throw new CollateralError(`collateral response has no ${key}`)
  const start = match.index + match[0].length
  if (text[start] !== '{') throw new CollateralError(`collateral ${key} is not an object`)
  let depth = 0
  let inString = false
  for (let i = start; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') inString = false
    } else if (c === '"') inString = true
    else if (c === '{') depth++
    else if (c === '}' && --depth === 0) return text.slice(start, i + 1)
  }
  throw new CollateralError(`collateral ${key} is truncated`)
}
