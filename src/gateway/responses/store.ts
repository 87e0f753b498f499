import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { JsonObject } from './response.ts'

/** One stored response: the response object and the input items of its own request. */
export type StoredResponse = {
  id: string
  apiKeyId: string | null
  createdAt: number
  previousResponseId: string | null
  /** This request's input items; earlier turns are the previous responses'. */
  input: JsonObject[]
  response: JsonObject
}

/** A stored response's row, as both stores read it (the JSON as the text it was saved as). */
export type ResponseRow = {
  id: string
  api_key_id: string | null
  created_at: number
  previous_response_id: string | null
  input: string
  response: string
}

export const recordOf = (row: ResponseRow): StoredResponse => ({
  id: row.id,
  apiKeyId: row.api_key_id,
  createdAt: row.created_at,
  previousResponseId: row.previous_response_id,
  input: JSON.parse(row.input) as JsonObject[],
  response: JSON.parse(row.response) as JsonObject,
})

/** Longer chains than this are refused rather than walked (a conversation this long fits no model anyway). */
export const MAX_CHAIN = 10_000

type Awaitable<T> = T | Promise<T>

/**
 * Where Responses API responses are kept: this file's SQLite store (one instance), or Postgres
 * (postgres-store.ts), shared by several instances.
 */
export interface ResponseRecords {
  /** Keeps a response; the promise, if any, resolves once other instances can read it too. */
  save(record: StoredResponse): Awaitable<void>
  /** The response `id`, if `apiKeyId` created it. */
  get(id: string, apiKeyId: string | null): Awaitable<StoredResponse | undefined>
  /**
   * The conversation that `id` ended, as input items for the next turn. Undefined when `id` is not `apiKeyId`'s;
   * throws BrokenChainError when an earlier response was deleted.
   */
  conversation(id: string, apiKeyId: string | null): Awaitable<JsonObject[] | undefined>
  /** Deletes `id` if `apiKeyId` created it; says whether it did. */
  delete(id: string, apiKeyId: string | null): Awaitable<boolean>
  close(): Awaitable<void>
}

/**
 * The conversation from the turns found walking back from `id` (newest first; `missing` is the id the walk could
 * not find, if any): every turn's input and output, oldest first.
 */
export function conversationOf(
  id: string,
  turns: readonly StoredResponse[],
  missing: string | null,
): JsonObject[] | undefined {
  if (!turns.length) return undefined
  if (missing !== null || turns.length > MAX_CHAIN) throw new BrokenChainError(id, missing ?? turns.at(-1)!.id)
  return turns.toReversed().flatMap((turn) => [...turn.input, ...((turn.response.output as JsonObject[]) ?? [])])
}

/**
 * The gateway's own store of Responses API responses (node:sqlite, WAL), for `previous_response_id` and
 * `GET`/`DELETE /v1/responses/{id}`. A response is visible only to the API key that created it.
 *
 * Each row keeps its own request's input, not the whole conversation: a chain of n turns costs n rows, not n²
 * items, and a conversation is rebuilt by walking back along `previous_response_id`.
 *
 * Saves wait in memory for an idle moment (`whenIdle`, the gateway's off-path queue) and commit together; reads look
 * there first, so a response is readable the moment it is saved.
 */
export class ResponseStore implements ResponseRecords {
  readonly #db: DatabaseSync
  readonly #insert: StatementSync
  readonly #select: StatementSync
  readonly #delete: StatementSync
  readonly #whenIdle: (commit: () => void) => void
  readonly #onError: (err: Error) => void
  readonly #pending = new Map<string, StoredResponse>()
  #scheduled = false

  constructor(path: string, options: { whenIdle?: (commit: () => void) => void; onError?: (err: Error) => void } = {}) {
    this.#whenIdle = options.whenIdle ?? ((commit) => commit())
    this.#onError = options.onError ?? ((err) => console.error(`response store: ${err.message}`))
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    this.#db = new DatabaseSync(path)
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;')
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS responses (
        id TEXT PRIMARY KEY,
        api_key_id TEXT,
        created_at INTEGER NOT NULL,
        previous_response_id TEXT,
        input TEXT NOT NULL,
        response TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS responses_by_time ON responses (created_at);
    `)
    this.#insert = this.#db.prepare(
      `INSERT OR REPLACE INTO responses (id, api_key_id, created_at, previous_response_id, input, response)
       VALUES (?, ?, ?, ?, ?, ?)`,
    )
    this.#select = this.#db.prepare('SELECT * FROM responses WHERE id = ?')
    this.#delete = this.#db.prepare('DELETE FROM responses WHERE id = ?')
  }

  save(record: StoredResponse): void {
    this.#pending.set(record.id, record)
    if (this.#scheduled) return
    this.#scheduled = true
    this.#whenIdle(() => this.flush())
  }

  /** The response `id`, if `apiKeyId` created it. */
  get(id: string, apiKeyId: string | null): StoredResponse | undefined {
    const record = this.#pending.get(id) ?? this.#read(id)
    return record && record.apiKeyId === apiKeyId ? record : undefined
  }

  /**
   * The conversation that `id` ended: every earlier turn's input and output, then its own input and output, as
   * input items for the next turn. Undefined when `id` is not `apiKeyId`'s; throws when the chain is broken (an
   * earlier response was deleted).
   */
  conversation(id: string, apiKeyId: string | null): JsonObject[] | undefined {
    const turns: StoredResponse[] = []
    let next: string | null = id
    while (next !== null && turns.length <= MAX_CHAIN) {
      const record = this.get(next, apiKeyId)
      if (!record) break
      turns.push(record)
      next = record.previousResponseId
    }
    return conversationOf(id, turns, next)
  }

  /** Deletes `id` if `apiKeyId` created it; says whether it did. */
  delete(id: string, apiKeyId: string | null): boolean {
    if (!this.get(id, apiKeyId)) return false
    this.#pending.delete(id)
    this.#delete.run(id)
    return true
  }

  /** Commits the saves waiting (`close()` does this too). */
  flush(): void {
    this.#scheduled = false
    if (!this.#pending.size) return
    const records = [...this.#pending.values()]
    try {
      this.#db.exec('BEGIN')
      for (const r of records) {
        this.#insert.run(
          r.id,
          r.apiKeyId,
          r.createdAt,
          r.previousResponseId,
          JSON.stringify(r.input),
          JSON.stringify(r.response),
        )
      }
      this.#db.exec('COMMIT')
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK')
      this.#onError(err as Error)
    }
    // Dropped from memory only once written (or failed for good): reads never miss a saved response.
    for (const r of records) if (this.#pending.get(r.id) === r) this.#pending.delete(r.id)
  }

  close(): void {
    this.flush()
    this.#db.close()
  }

  #read(id: string): StoredResponse | undefined {
    const row = this.#select.get(id) as ResponseRow | undefined
    return row && recordOf(row)
  }
}

/** A chain of responses with a missing link: an earlier response was deleted. */
export class BrokenChainError extends Error {
  override name = 'BrokenChainError'
  readonly missing: string

  constructor(id: string, missing: string) {
    super(`the conversation before response '${id}' is incomplete: response '${missing}' was deleted`)
    this.missing = missing
  }
}
