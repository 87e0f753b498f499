import { type Dispatcher, request } from 'undici'

/** A provider's GET /v1/models failed: unreachable, slow, non-2xx, oversized, or not an OpenAI model list. */
export class ProviderModelsError extends Error {
  override name = 'ProviderModelsError'
  readonly url: string

  constructor(url: string, message: string, options?: { cause?: unknown }) {
    super(`GET ${url}: ${message}`, options)
    this.url = url
  }
}

/** An OpenAI model list is small; anything bigger is a broken or hostile provider. */
const MAX_BODY_BYTES = 1_000_000
const MAX_MODELS = 1_000
const MAX_ID_LENGTH = 256

/**
 * The model ids a provider lists at `{base}/v1/models` (public, no auth; 0g-protocol.md §2). The whole exchange is
 * bounded by `timeoutMs` and the body by size, since the provider is untrusted. Ids that are not short strings
 * are skipped; a response without a `data` array is an error, so "serves no models" is never confused with
 * "answered something else".
 */
export async function fetchProviderModels(
  base: URL,
  opts: { dispatcher?: Dispatcher; timeoutMs?: number } = {},
): Promise<string[]> {
  const url = modelsUrl(base)
  const timeoutMs = opts.timeoutMs ?? 2_000
  let text: string
  try {
    const res = await request(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      dispatcher: opts.dispatcher,
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump()
      throw new ProviderModelsError(url, `status ${res.statusCode}`)
    }
    text = await readLimited(res.body, url)
  } catch (err) {
    if (err instanceof ProviderModelsError) throw err
    const e = err as Error
    const reason = e.name === 'TimeoutError' || e.name === 'AbortError' ? `timed out after ${timeoutMs} ms` : e.message
    throw new ProviderModelsError(url, reason, { cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new ProviderModelsError(url, 'the response is not JSON')
  }
  const data = (json as { data?: unknown } | null)?.data
  if (!Array.isArray(data)) throw new ProviderModelsError(url, 'the response has no "data" array')
  const ids = new Set<string>()
  for (const model of data) {
    const id = (model as { id?: unknown } | null)?.id
    if (typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH) ids.add(id)
    if (ids.size >= MAX_MODELS) break
  }
  return [...ids]
}

/** `{base}/v1/models`, keeping a path prefix of the base (providers may sit under one) and dropping query and hash. */
export function modelsUrl(base: URL): string {
  const u = new URL(base.href)
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/models`
  u.search = ''
  u.hash = ''
  return u.href
}

async function readLimited(body: Dispatcher.ResponseData['body'], url: string): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) {
      body.destroy()
      throw new ProviderModelsError(url, `the response is larger than ${MAX_BODY_BYTES} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
