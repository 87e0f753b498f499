import { readKeys } from './session.ts'

/** An error the gateway answered (OpenAI's shape), or a call the UI could not make. */
export class GatewayCallError extends Error {
  readonly status: number
  readonly code: string | null
  readonly requestId: string | null

  constructor(message: string, status: number, code: string | null = null, requestId: string | null = null) {
    super(message)
    this.name = 'GatewayCallError'
    this.status = status
    this.code = code
    this.requestId = requestId
  }
}

type CallOptions = {
  /** Which key authorizes it: an API key (/v1) or the admin key (/admin). */
  auth: 'api' | 'admin'
  method?: string
  json?: unknown
  body?: BodyInit
  headers?: Record<string, string>
  signal?: AbortSignal
}

/** Calls the gateway (same origin) with the session's key; a non-2xx answer is thrown as a GatewayCallError. */
export async function call(path: string, options: CallOptions): Promise<Response> {
  const keys = readKeys()
  const key = options.auth === 'api' ? keys.apiKey : keys.adminKey
  if (!key) {
    const which = options.auth === 'api' ? 'an API key' : 'the admin key'
    throw new GatewayCallError(`This needs ${which}: enter it under Keys (top right).`, 0, 'missing_key')
  }
  const headers: Record<string, string> = { authorization: `Bearer ${key}`, ...options.headers }
  if (options.json !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(path, {
    method: options.method ?? (options.json === undefined && options.body === undefined ? 'GET' : 'POST'),
    headers,
    body: options.json === undefined ? options.body : JSON.stringify(options.json),
    signal: options.signal,
  })
  if (!res.ok) throw await errorOf(res)
  return res
}

async function errorOf(res: Response): Promise<GatewayCallError> {
  const requestId = res.headers.get('x-request-id')
  const text = await res.text().catch(() => '')
  try {
    const { error } = JSON.parse(text) as { error?: { message?: string; code?: string | null } }
    if (error?.message) return new GatewayCallError(error.message, res.status, error.code ?? null, requestId)
  } catch {
    // not JSON: the status line says what there is to say
  }
  return new GatewayCallError(
    `${res.status} ${res.statusText} ${text.slice(0, 200)}`.trim(),
    res.status,
    null,
    requestId,
  )
}

export async function getJson<T>(path: string, auth: CallOptions['auth']): Promise<T> {
  return (await call(path, { auth })).json() as Promise<T>
}

/** What the gateway says of an answer in its headers (README "Response headers"). */
export type AnswerInfo = {
  requestId: string | null
  provider: string | null
  verification: string | null
  /** Neuron; a stream's fee is a trailer, which browsers cannot read: its usage chunk says it in `cost`. */
  fee: string | null
  /** 0G, from the body's `usage.cost`. */
  cost?: number
  attempts: string | null
}

export function answerInfo(res: Response): AnswerInfo {
  return {
    requestId: res.headers.get('x-request-id'),
    provider: res.headers.get('x-zg-provider'),
    verification: res.headers.get('x-zg-verification'),
    fee: res.headers.get('x-zg-fee'),
    attempts: res.headers.get('x-zg-attempts'),
  }
}
