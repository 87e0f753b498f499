import type { Sql } from '../../store/postgres/connect.ts'
import { column, eventOf, fileOf, JOB_COLUMNS, jobOf, paged, type Row, tunedOf } from './record-rows.ts'
import type {
  FileRecord,
  FineTuningRecords,
  JobChanges,
  JobEvent,
  JobPhase,
  JobRecord,
  Page,
  TunedModel,
} from './records.ts'

const TERMINAL = "('done', 'failed', 'cancelled')"

/**
 * The fine-tuning records in Postgres (migration 0005), shared by every gateway instance: a file uploaded through
 * one is trained on by a job another follows. The bytes of a file live in the database too (ft_file_contents), as
 * no instance's disk is the others'. One instance at a time follows a job, under a lease it renews on each step; a
 * dead instance's lease runs out and another takes the job over where its phase says.
 */
export class PostgresFineTuningRecords implements FineTuningRecords {
  readonly #sql: Sql

  constructor(sql: Sql) {
    this.#sql = sql
  }

  async addFile(file: FileRecord, content: Uint8Array): Promise<void> {
    await this.#sql.begin(async (tx) => {
      await tx`INSERT INTO ft_files (id, api_key_id, purpose, filename, bytes, created_at, examples, tokens)
        VALUES (${file.id}, ${file.apiKeyId}, ${file.purpose}, ${file.filename}, ${file.bytes}, ${file.createdAt},
                ${file.examples}, ${file.tokens})`
      await tx`INSERT INTO ft_file_contents (id, content) VALUES (${file.id}, ${Buffer.from(content)})`
    })
  }

  async file(id: string, apiKeyId: string): Promise<FileRecord | undefined> {
    const [row] = await this.#sql<Row[]>`SELECT * FROM ft_files WHERE id = ${id} AND api_key_id = ${apiKeyId}`
    return row && fileOf(row)
  }

  async fileContent(id: string, apiKeyId: string): Promise<Uint8Array | undefined> {
    const [row] = await this.#sql<{ content: Buffer }[]>`
      SELECT c.content FROM ft_file_contents c JOIN ft_files f ON f.id = c.id
       WHERE c.id = ${id} AND f.api_key_id = ${apiKeyId}`
    return row?.content
  }

  async files(
    apiKeyId: string,
    query: { purpose?: string; limit: number; after?: string; order: 'asc' | 'desc' },
  ): Promise<Page<FileRecord>> {
    const after = query.after ? await this.#seq('ft_files', query.after) : null
    if (query.after && after === null) return { data: [], hasMore: false }
    const rows = await this.#sql.unsafe<Row[]>(
      `SELECT * FROM ft_files WHERE api_key_id = $1 AND ($2::text IS NULL OR purpose = $2)
         AND ($3::bigint IS NULL OR seq ${query.order === 'asc' ? '>' : '<'} $3)
       ORDER BY seq ${query.order === 'asc' ? 'ASC' : 'DESC'} LIMIT $4`,
      [apiKeyId, query.purpose ?? null, after, query.limit + 1],
    )
    return paged(rows, query.limit, fileOf)
  }

  async deleteFile(id: string, apiKeyId: string): Promise<boolean> {
    const rows = await this.#sql`DELETE FROM ft_files WHERE id = ${id} AND api_key_id = ${apiKeyId} RETURNING id`
    return rows.length > 0
  }

  async addJob(job: JobRecord): Promise<void> {
    const keys = Object.keys(JOB_COLUMNS) as Array<keyof typeof JOB_COLUMNS>
    await this.#sql.unsafe(
      `INSERT INTO ft_jobs (id, api_key_id, created_at, ${keys.map((k) => JOB_COLUMNS[k]).join(', ')})
       VALUES ($1, $2, $3, ${keys.map((_, i) => `$${i + 4}`).join(', ')})`,
      [job.id, job.apiKeyId, job.createdAt, ...keys.map((k) => column(k, job[k]))],
    )
  }

  async updateJob(id: string, changes: JobChanges, from?: JobPhase): Promise<JobRecord | undefined> {
    const keys = (Object.keys(changes) as Array<keyof typeof JOB_COLUMNS>).filter((k) => k in JOB_COLUMNS)
    if (!keys.length) return this.job(id)
    const values = keys.map((k) => column(k, changes[k]))
    const rows = await this.#sql.unsafe<Row[]>(
      `UPDATE ft_jobs SET ${keys.map((k, i) => `${JOB_COLUMNS[k]} = $${i + 2}`).join(', ')}
        WHERE id = $1${from ? ` AND phase = $${keys.length + 2}` : ''} RETURNING *`,
      [id, ...values, ...(from ? [from] : [])],
    )
    return rows[0] && jobOf(rows[0])
  }

  async job(id: string, apiKeyId?: string): Promise<JobRecord | undefined> {
    const [row] = await this.#sql<Row[]>`SELECT * FROM ft_jobs WHERE id = ${id}`
    if (!row || (apiKeyId !== undefined && row.api_key_id !== apiKeyId)) return undefined
    return jobOf(row)
  }

  async jobs(apiKeyId: string, query: { limit: number; after?: string }): Promise<Page<JobRecord>> {
    const after = query.after ? await this.#seq('ft_jobs', query.after) : null
    if (query.after && after === null) return { data: [], hasMore: false }
    const rows = await this.#sql<Row[]>`
      SELECT * FROM ft_jobs WHERE api_key_id = ${apiKeyId} AND (${after}::bigint IS NULL OR seq < ${after})
      ORDER BY seq DESC LIMIT ${query.limit + 1}`
    return paged(rows, query.limit, jobOf)
  }

  async activeJobs(): Promise<JobRecord[]> {
    const rows = await this.#sql.unsafe<Row[]>(`SELECT * FROM ft_jobs WHERE phase NOT IN ${TERMINAL} ORDER BY seq`)
    return rows.map(jobOf)
  }

  /** The lease is on the database clock, so instances whose clocks differ still agree on when it ends. */
  async claim(jobId: string, holder: string, leaseMs: number): Promise<boolean> {
    const rows = await this.#sql`
      UPDATE ft_jobs SET lease_holder = ${holder}, lease_until = now() + ${leaseMs} * interval '1 millisecond'
       WHERE id = ${jobId} AND (lease_holder IS NULL OR lease_holder = ${holder} OR lease_until < now())
      RETURNING id`
    return rows.length > 0
  }

  async addEvent(event: JobEvent): Promise<void> {
    await this.#sql`INSERT INTO ft_job_events (id, job_id, created_at, level, type, message, data)
      VALUES (${event.id}, ${event.jobId}, ${event.createdAt}, ${event.level}, ${event.type}, ${event.message},
              ${event.data ? JSON.stringify(event.data) : null})`
  }

  async events(jobId: string, query: { limit: number; after?: string }): Promise<Page<JobEvent>> {
    const after = query.after ? await this.#seq('ft_job_events', query.after) : null
    if (query.after && after === null) return { data: [], hasMore: false }
    const rows = await this.#sql<Row[]>`
      SELECT * FROM ft_job_events WHERE job_id = ${jobId} AND (${after}::bigint IS NULL OR seq < ${after})
      ORDER BY seq DESC LIMIT ${query.limit + 1}`
    return paged(rows, query.limit, eventOf)
  }

  async addTunedModel(model: TunedModel): Promise<void> {
    await this.#sql`INSERT INTO ft_tuned_models (id, api_key_id, base_model, provider, job_id, created_at)
      VALUES (${model.id}, ${model.apiKeyId}, ${model.baseModel}, ${model.provider}, ${model.jobId}, ${model.createdAt})
      ON CONFLICT (id) DO UPDATE SET provider = excluded.provider`
  }

  async tunedModel(id: string): Promise<TunedModel | undefined> {
    const [row] = await this.#sql<Row[]>`SELECT * FROM ft_tuned_models WHERE id = ${id}`
    return row && tunedOf(row)
  }

  async tunedModels(apiKeyId: string): Promise<TunedModel[]> {
    const rows = await this.#sql<Row[]>`
      SELECT * FROM ft_tuned_models WHERE api_key_id = ${apiKeyId} ORDER BY created_at`
    return rows.map(tunedOf)
  }

  /** The pool is the gateway's: closed with its other stores. */
  close(): void {}

  async #seq(table: 'ft_files' | 'ft_jobs' | 'ft_job_events', id: string): Promise<string | null> {
    const [row] = await this.#sql.unsafe<{ seq: string }[]>(`SELECT seq FROM ${table} WHERE id = $1`, [id])
    return row?.seq ?? null
  }
}
