import { type Dispatcher, request } from 'undici'

export type GuardedJsonOptions = {
  /** Budget for the whole exchange (connect, headers and body); also the undici header and body timeouts. */
  timeoutMs: number
  /** Body size cap, enforced while reading: a Content-Length can lie or be absent. */
  maxBytes: number
  /** More request headers (an authorization). */
  headers?: Record<string, string>
  /** Aborts the exchange early (a caller shutting down). */
  signal?: AbortSignal
}

/** A request other than a plain GET: its method and body (JSON, a form, a file). */
export type GuardedRequest = GuardedJsonOptions & {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  body?: Uint8Array | string
  contentType?: string
}

export type GuardedResponse = { statusCode: number; headers: Dispatcher.ResponseData['headers']; body: Buffer }

export type GuardedJsonResponse = {
  status: number
  /** The parsed body; undefined when a non-2xx answer is not JSON (a 2xx one must be). */
  json: unknown
}

/** Why a guarded GET did not produce JSON: `redirect`, `too-large`, `not-json`, or `network` (timeouts included). */
export class GuardedFetchError extends Error {
  override name = 'GuardedFetchError'
  readonly kind: 'redirect' | 'too-large' | 'not-json' | 'network'
  readonly url: string

  constructor(kind: GuardedFetchError['kind'], url: string, message: string) {
    super(message)
    this.kind = kind
    this.url = url
  }
}

/**
 * GETs JSON from a provider through `dispatcher` (the guarded provider agent: private addresses refused at every
 * connection). A 3xx is refused rather than followed (a redirect could point anywhere, the guard would not see
 * where), and the body is read up to `maxBytes`, the connection torn down past it.
 */
export async function fetchJsonGuarded(
  dispatcher: Dispatcher | undefined,
  url: string,
  options: GuardedJsonOptions,
): Promise<GuardedJsonResponse> {
  const res = await requestGuarded(dispatcher, url, options, 'application/json')
  const text = res.body.toString('utf8')
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    if (res.statusCode >= 200 && res.statusCode < 300) {
      throw new GuardedFetchError('not-json', url, `GET ${url}: the answer is not JSON`)
    }
    json = undefined
  }
  return { status: res.statusCode, json }
}

/**
 * The same guarded GET as a fetch-like function, for code written against fetch (the collateral source): the body
 * is read whole under the cap before the Response is made.
 */
export function guardedFetch(
  dispatcher: Dispatcher,
  options: GuardedJsonOptions,
): (url: string, init?: { signal?: AbortSignal }) => Promise<Response> {
  return async (url) => {
    const res = await requestGuarded(dispatcher, url, options, '*/*')
    const headers = new Headers()
    for (const [name, value] of Object.entries(res.headers)) {
      if (typeof value === 'string') headers.set(name, value)
      else if (Array.isArray(value)) for (const v of value) headers.append(name, v)
    }
    return new Response(new Uint8Array(res.body), { status: res.statusCode, headers })
  }
}

/** One exchange through the guarded agent: redirects refused, the answer read whole up to the cap. */
export async function requestGuarded(
  dispatcher: Dispatcher | undefined,
  url: string,
  options: GuardedRequest,
  accept = '*/*',
): Promise<GuardedResponse> {
  const method = options.method ?? 'GET'
  const timeout = AbortSignal.timeout(options.timeoutMs)
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout
  let res: Dispatcher.ResponseData
  try {
    res = await request(url, {
      method,
      dispatcher,
      headers: {
        accept,
        ...(options.contentType ? { 'content-type': options.contentType } : {}),
        ...options.headers,
      },
      body: options.body,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      signal,
    })
  } catch (err) {
    throw new GuardedFetchError('network', url, `${method} ${url}: ${describe(err, options.timeoutMs)}`)
  }
  if (res.statusCode >= 300 && res.statusCode < 400) {
    discard(res)
    const location = res.headers.location
    throw new GuardedFetchError(
      'redirect',
      url,
      `${method} ${url}: redirect ${res.statusCode}${location ? ` to ${String(location)}` : ''} refused`,
    )
  }
  return { statusCode: res.statusCode, headers: res.headers, body: await readCapped(res, url, options, method) }
}

async function readCapped(
  res: Dispatcher.ResponseData,
  url: string,
  options: GuardedJsonOptions,
  method: string,
): Promise<Buffer> {
  const declared = Number(res.headers['content-length'])
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    discard(res)
    throw new GuardedFetchError(
      'too-large',
      url,
      `${method} ${url}: answer of ${declared} bytes over ${options.maxBytes}`,
    )
  }
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > options.maxBytes) {
        discard(res)
        throw new GuardedFetchError('too-large', url, `${method} ${url}: answer over ${options.maxBytes} bytes`)
      }
      chunks.push(chunk as Buffer)
    }
  } catch (err) {
    if (err instanceof GuardedFetchError) throw err
    throw new GuardedFetchError('network', url, `${method} ${url}: ${describe(err, options.timeoutMs)}`)
  }
  return Buffer.concat(chunks)
}

/** Tears the connection down; the abort error the body then emits has no other listener and would go unhandled. */
function discard(res: Dispatcher.ResponseData): void {
  res.body.on('error', () => {})
  res.body.destroy()
}

function describe(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string }
  if (e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
    return `no answer within ${timeoutMs} ms`
  }
  return e.code ? `${e.code}: ${e.message}` : String(e.message ?? err)
}
