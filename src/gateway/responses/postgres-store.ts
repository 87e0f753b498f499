import type { Sql } from '../../store/postgres/connect.ts'
import type { JsonObject } from './response.ts'
import {
  conversationOf,
  MAX_CHAIN,
  type ResponseRecords,
  type ResponseRow,
  recordOf,
  type StoredResponse,
} from './store.ts'

const COLUMNS = 'id, api_key_id, created_at::float8 AS created_at, previous_response_id, input, response'

/**
 * Responses API responses in Postgres (table responses, migration 0004), shared by every gateway instance: a save
 * is committed before the answer's last byte leaves (the relay waits for it), so the client's next turn finds its
 * previous response whichever instance it reaches. A conversation is one recursive query, not a round trip a turn.
 */
export class PostgresResponseStore implements ResponseRecords {
  readonly #sql: Sql
  readonly #onError: (err: Error) => void
  /** Saves under way, readable here until committed. */
  readonly #pending = new Map<string, StoredResponse>()

  constructor(sql: Sql, options: { onError?: (err: Error) => void } = {}) {
    this.#sql = sql
    this.#onError = options.onError ?? ((err) => console.error(`response store: ${err.message}`))
  }

  /** Never rejects: a response that could not be kept is told to onError, and the answer still goes out. */
  async save(record: StoredResponse): Promise<void> {
    this.#pending.set(record.id, record)
    try {
      await this.#sql`
        INSERT INTO responses (id, api_key_id, created_at, previous_response_id, input, response)
        VALUES (${record.id}, ${record.apiKeyId}, ${record.createdAt}, ${record.previousResponseId},
                ${JSON.stringify(record.input)}, ${JSON.stringify(record.response)})
        ON CONFLICT (id) DO UPDATE SET response = excluded.response`
    } catch (err) {
      this.#onError(err as Error)
    } finally {
      if (this.#pending.get(record.id) === record) this.#pending.delete(record.id)
    }
  }

  async get(id: string, apiKeyId: string | null): Promise<StoredResponse | undefined> {
    const pending = this.#pending.get(id)
    const record =
      pending ??
      (await this.#sql
        .unsafe<ResponseRow[]>(`SELECT ${COLUMNS} FROM responses WHERE id = $1`, [id])
        .then(([row]) => row && recordOf(row)))
    return record && record.apiKeyId === apiKeyId ? record : undefined
  }

  async conversation(id: string, apiKeyId: string | null): Promise<JsonObject[] | undefined> {
    const rows = await this.#sql.unsafe<(ResponseRow & { depth: number })[]>(
      `WITH RECURSIVE chain AS (
         SELECT ${COLUMNS}, 1 AS depth FROM responses WHERE id = $1
         UNION ALL
         SELECT r.id, r.api_key_id, r.created_at::float8, r.previous_response_id, r.input, r.response, c.depth + 1
           FROM responses r JOIN chain c ON r.id = c.previous_response_id
          WHERE c.depth <= $2
       )
       SELECT * FROM chain ORDER BY depth`,
      [id, MAX_CHAIN],
    )
    const turns: StoredResponse[] = []
    let next: string | null = id
    for (const row of rows) {
      // Another key's response ends the walk where it stands, as a missing one would.
      if (row.id !== next || row.api_key_id !== apiKeyId) break
      turns.push(recordOf(row))
      next = row.previous_response_id
    }
    return conversationOf(id, turns, next)
  }

  async delete(id: string, apiKeyId: string | null): Promise<boolean> {
    const rows = await this.#sql`DELETE FROM responses WHERE id = ${id} AND api_key_id IS NOT DISTINCT FROM ${apiKeyId}
                                 RETURNING id`
    this.#pending.delete(id)
    return rows.length > 0
  }

  /** The pool is the caller's to close. */
  close(): void {}
}
