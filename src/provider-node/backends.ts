/** One OpenAI-compatible backend (a vLLM replica) of a node, and what the node knows of it. */
export type Backend = {
  /** Base URL, without /v1. */
  readonly url: string
  up: boolean
  /** Calls sent to it and not yet finished. */
  inFlight: number
  /** Calls sent to it since the node started. */
  calls: number
  /** When its health was last checked (ms since the epoch); null before the first check. */
  checkedAt: number | null
  /** Why it is down, when it is. */
  error: string | null
}

/** What the node's /health and metrics show of a backend. */
export type BackendState = Readonly<Backend>

export type BackendPoolOptions = {
  /** The backends' base URLs (with or without a trailing /v1). */
  urls: readonly string[]
  apiKey?: string
  /** How often each backend's GET /v1/models is tried (default 5 s). Only with more than one backend. */
  healthIntervalMs?: number
  /** How long one health check may take before the backend counts as down (default 2 s). */
  healthTimeoutMs?: number
  log?: (line: string) => void
}

export const DEFAULT_HEALTH_INTERVAL_MS = 5_000
export const DEFAULT_HEALTH_TIMEOUT_MS = 2_000

/** What a failed fetch says: the system error's code under undici's "fetch failed" (ECONNREFUSED, …). */
function reasonOf(err: Error): string {
  let e: unknown = err
  let message = err.message
  for (let depth = 0; e && depth < 4; depth++) {
    const { code, errors, cause } = e as { code?: string; errors?: unknown[]; cause?: unknown }
    if (code) return code
    message = (e as Error).message || message
    e = errors?.[0] ?? cause
  }
  return message
}

/** The base URL as the node calls it: no trailing slash, no /v1 (the node adds /v1/<endpoint>). */
export const backendBase = (url: string) => url.replace(/\/+$/, '').replace(/\/v1$/, '')

/**
 * The backends a node spreads its calls over: each call goes to the backend that is up with the fewest calls in
 * flight (ties in turn). A background check (GET <backend>/v1/models, bounded in time) marks each up or down, and a
 * call whose connection is refused marks its backend down at once; the check brings it back.
 *
 * One backend alone is never checked nor passed over: the node behaves as it always has (its calls go there, and a
 * backend that is down answers 502), and nothing but the calls reaches it.
 */
export class BackendPool {
  readonly #backends: Backend[]
  readonly #apiKey: string | undefined
  readonly #timeoutMs: number
  readonly #log: (line: string) => void
  readonly #timer: NodeJS.Timeout | undefined
  #turn = 0
  #checking: Promise<void> | undefined

  constructor(options: BackendPoolOptions) {
    if (!options.urls.length) throw new Error('a provider node needs at least one backend')
    this.#backends = options.urls.map((url) => ({
      url: backendBase(url),
      up: true,
      inFlight: 0,
      calls: 0,
      checkedAt: null,
      error: null,
    }))
    this.#apiKey = options.apiKey
    this.#timeoutMs = options.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS
    this.#log = options.log ?? (() => {})
    if (this.#backends.length > 1) {
      void this.check()
      this.#timer = setInterval(() => void this.check(), options.healthIntervalMs ?? DEFAULT_HEALTH_INTERVAL_MS)
      this.#timer.unref()
    }
  }

  /** Whether the node spreads over several backends (and so checks their health). */
  get several(): boolean {
    return this.#backends.length > 1
  }

  /** The first backend: where the node reads its models' context lengths. */
  get primary(): string {
    return this.#backends[0]!.url
  }

  /**
   * The backend for the next call, its in-flight count taken (give it back with {@link done}): of those not in
   * `tried`, the least busy that is up; undefined when none is left.
   */
  take(tried: ReadonlySet<Backend> = new Set()): Backend | undefined {
    let best: Backend | undefined
    const n = this.#backends.length
    for (let i = 0; i < n; i++) {
      const b = this.#backends[(this.#turn + i) % n]!
      if (tried.has(b) || (!b.up && this.several)) continue
      if (!best || b.inFlight < best.inFlight) best = b
    }
    if (!best) return undefined
    this.#turn = (this.#backends.indexOf(best) + 1) % n
    best.inFlight++
    best.calls++
    return best
  }

  /** The call sent to `backend` has ended. */
  done(backend: Backend): void {
    backend.inFlight--
  }

  /** A call could not reach `backend`: it is passed over until a health check finds it up. */
  down(backend: Backend, reason: string): void {
    // One backend alone is never passed over, and no check would bring it back.
    if (!this.several) return
    if (backend.up) this.#log(`backend ${backend.url} is down: ${reason}`)
    backend.up = false
    backend.error = reason
  }

  /** Checks every backend now (GET /v1/models within the timeout): 2xx is up, anything else down. One at a time. */
  check(): Promise<void> {
    this.#checking ??= this.#checkAll().finally(() => {
      this.#checking = undefined
    })
    return this.#checking
  }

  async #checkAll(): Promise<void> {
    await Promise.all(
      this.#backends.map(async (b) => {
        let error: string | null = null
        try {
          const res = await fetch(`${b.url}/v1/models`, {
            headers: this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {},
            signal: AbortSignal.timeout(this.#timeoutMs),
          })
          await res.arrayBuffer()
          if (!res.ok) error = `GET /v1/models answered ${res.status}`
        } catch (err) {
          const e = err as Error
          error = e.name === 'TimeoutError' ? `no answer within ${this.#timeoutMs} ms` : reasonOf(e)
        }
        b.checkedAt = Date.now()
        if (error === null && !b.up) this.#log(`backend ${b.url} is up again`)
        if (error !== null && b.up) this.#log(`backend ${b.url} is down: ${error}`)
        b.up = error === null
        b.error = error
      }),
    )
  }

  states(): BackendState[] {
    return this.#backends.map((b) => ({ ...b }))
  }

  close(): void {
    clearInterval(this.#timer)
  }
}
