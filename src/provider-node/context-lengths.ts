import { type Dispatcher, request } from 'undici'

/** How often the backend's model list is read again (a model swapped behind the node shows within it). */
const REFRESH_MS = 600_000
/** After a failed read, how soon it is tried again. */
const RETRY_MS = 30_000
/** The longest the first call waits for the list. */
const READ_TIMEOUT_MS = 2_000

/**
 * The context length of each model the backend serves, as it reports them (vLLM's /v1/models `max_model_len`): the
 * most a chat call that states no max_tokens can write, since vLLM then writes up to the context and no further.
 * Read on first need, then again every 10 minutes in the background; a backend that reports none, or cannot be read,
 * leaves them unknown.
 */
export class ContextLengths {
  #lengths: Map<string, bigint> | undefined
  #loading: Promise<void> | undefined
  #due = 0
  readonly #backendUrl: string
  readonly #apiKey: string | undefined
  readonly #dispatcher: Dispatcher

  constructor(params: { backendUrl: string; apiKey?: string; dispatcher: Dispatcher }) {
    this.#backendUrl = params.backendUrl
    this.#apiKey = params.apiKey
    this.#dispatcher = params.dispatcher
  }

  /** The model's context length: at once once the list was read, else after its first read. */
  of(model: string): bigint | undefined | Promise<bigint | undefined> {
    if (Date.now() >= this.#due) this.#load()
    const lengths = this.#lengths
    if (lengths) return lengths.get(model)
    return (this.#loading ?? Promise.resolve()).then(() => this.#lengths?.get(model))
  }

  #load(): void {
    if (this.#loading) return
    this.#loading = this.#read().then(
      (lengths) => {
        this.#lengths = lengths
        this.#due = Date.now() + REFRESH_MS
      },
      () => {
        this.#lengths ??= new Map()
        this.#due = Date.now() + RETRY_MS
      },
    )
    this.#loading.finally(() => {
      this.#loading = undefined
    })
  }

  async #read(): Promise<Map<string, bigint>> {
    const res = await request(`${this.#backendUrl}/v1/models`, {
      dispatcher: this.#dispatcher,
      headers: this.#apiKey ? { authorization: `Bearer ${this.#apiKey}` } : {},
      headersTimeout: READ_TIMEOUT_MS,
      bodyTimeout: READ_TIMEOUT_MS,
    })
    if (res.statusCode !== 200) {
      await res.body.dump()
      throw new Error(`the backend's /v1/models answered ${res.statusCode}`)
    }
    const body = (await res.body.json()) as { data?: unknown }
    const lengths = new Map<string, bigint>()
    for (const m of Array.isArray(body.data) ? body.data : []) {
      const { id, max_model_len: length } = (m ?? {}) as Record<string, unknown>
      if (typeof id === 'string' && typeof length === 'number' && Number.isInteger(length) && length > 0)
        lengths.set(id, BigInt(length))
    }
    return lengths
  }
}
