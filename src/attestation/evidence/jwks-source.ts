import { importJWK, type JWK, type JWTVerifyGetKey } from 'jose'

/** NVIDIA's NRAS signing keys (tee-verification.md §4.2); they rotate every ~2 days, hence lookups by kid. */
export const NRAS_JWKS_URL = 'https://nras.attestation.nvidia.com/.well-known/jwks.json'

export type FetchLike = (url: string, init: { redirect: 'manual'; signal: AbortSignal }) => Promise<Response>

export class JwksError extends Error {
  override name = 'JwksError'
}

type VerifyKey = Awaited<ReturnType<typeof importJWK>>

/**
 * ES384 verification keys from a JWKS URL, cached in memory by kid. An unknown kid triggers one refetch (keys
 * rotate), but refetches are spaced by `minRefetchMs` so tokens with made-up kids cannot make us hammer the URL.
 */
export class JwksSource {
  readonly #url: string
  readonly #fetch: FetchLike
  readonly #timeoutMs: number
  readonly #maxBytes: number
  readonly #minRefetchMs: number
  readonly #keys = new Map<string, VerifyKey>()
  #lastFetch = Number.NEGATIVE_INFINITY
  #inflight: Promise<void> | undefined

  constructor(
    options: { url?: string; fetch?: FetchLike; timeoutMs?: number; maxBytes?: number; minRefetchMs?: number } = {},
  ) {
    this.#url = options.url ?? NRAS_JWKS_URL
    this.#fetch = options.fetch ?? fetch
    this.#timeoutMs = options.timeoutMs ?? 10_000
    this.#maxBytes = options.maxBytes ?? 1024 * 1024
    this.#minRefetchMs = options.minRefetchMs ?? 60_000
  }

  /** The key for `kid`, fetching the JWKS when it is not cached; throws JwksError when the JWKS has no such key. */
  async getKey(kid: string | undefined): Promise<VerifyKey> {
    if (!kid) throw new JwksError('token has no kid')
    const cached = this.#keys.get(kid)
    if (cached) return cached
    if (performance.now() - this.#lastFetch >= this.#minRefetchMs) {
      this.#inflight ??= this.#refresh().finally(() => {
        this.#inflight = undefined
      })
      await this.#inflight
    }
    const key = this.#keys.get(kid)
    if (!key) throw new JwksError(`no key ${kid} in ${this.#url}`)
    return key
  }

  /** For `jose.jwtVerify`: resolves the key named by the token header's kid. */
  readonly keyGetter: JWTVerifyGetKey = (header) => this.getKey(header.kid)

  async #refresh(): Promise<void> {
    this.#lastFetch = performance.now()
    const res = await this.#fetch(this.#url, { redirect: 'manual', signal: AbortSignal.timeout(this.#timeoutMs) })
    if (res.status !== 200) throw new JwksError(`${this.#url} answered ${res.status}`)
    const jwks = parseJwks(await readCapped(res, this.#maxBytes))
    for (const jwk of jwks) {
      if (typeof jwk.kid !== 'string' || jwk.kty !== 'EC' || jwk.crv !== 'P-384') continue
      this.#keys.set(jwk.kid, await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, 'ES384'))
    }
  }
}

function parseJwks(text: string): JWK[] {
  try {
    const parsed = JSON.parse(text) as { keys?: unknown }
    if (Array.isArray(parsed.keys)) return parsed.keys as JWK[]
  } catch {}
  throw new JwksError('JWKS is not JSON {keys: [...]}')
}

/** Reads a body up to `maxBytes` (a content-length can lie or be absent). */
async function readCapped(res: Response, maxBytes: number): Promise<string> {
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.length
    // Leaving the loop by throwing cancels the stream.
    if (size > maxBytes) throw new JwksError(`JWKS larger than ${maxBytes} bytes`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}
