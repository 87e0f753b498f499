import { mkdirSync } from 'node:fs'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
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

/**
 * The fine-tuning records in SQLite (fine-tuning.sqlite in the data dir). Every write commits at once: a job's
 * phase is what lets the runner resume it without paying twice, so it must survive a crash.
 */
export class SqliteFineTuningRecords implements FineTuningRecords {
  readonly #db: DatabaseSync
  readonly #filesDir: string

  /** `filesDir`: where the files' bytes are kept, one file each. */
  constructor(path: string, filesDir: string) {
    this.#filesDir = filesDir
    mkdirSync(filesDir, { recursive: true })
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    this.#db = new DatabaseSync(path)
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;')
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS files (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        api_key_id TEXT NOT NULL,
        purpose TEXT NOT NULL,
        filename TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        examples INTEGER NOT NULL,
        tokens INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        api_key_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        model TEXT NOT NULL,
        training_file TEXT NOT NULL,
        hyperparameters TEXT NOT NULL,
        suffix TEXT,
        seed INTEGER NOT NULL,
        metadata TEXT,
        status TEXT NOT NULL,
        phase TEXT NOT NULL,
        finished_at INTEGER,
        provider TEXT,
        task_id TEXT,
        task_nonce TEXT,
        dataset_hash TEXT,
        fee TEXT,
        reservation TEXT,
        trained_tokens INTEGER,
        fine_tuned_model TEXT,
        result_file TEXT,
        error TEXT
      );
      CREATE TABLE IF NOT EXISTS job_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        job_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        level TEXT NOT NULL,
        type TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT
      );
      CREATE INDEX IF NOT EXISTS job_events_by_job ON job_events (job_id, seq);
      CREATE TABLE IF NOT EXISTS tuned_models (
        id TEXT PRIMARY KEY,
        api_key_id TEXT NOT NULL,
        base_model TEXT NOT NULL,
        provider TEXT NOT NULL,
        job_id TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
    `)
  }

  async addFile(file: FileRecord, content: Uint8Array): Promise<void> {
    const path = join(this.#filesDir, file.id)
    await writeFile(`${path}.tmp`, content)
    await rename(`${path}.tmp`, path)
    this.#db
      .prepare(
        `INSERT INTO files (id, api_key_id, purpose, filename, bytes, created_at, examples, tokens)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(file.id, file.apiKeyId, file.purpose, file.filename, file.bytes, file.createdAt, file.examples, file.tokens)
  }

  file(id: string, apiKeyId: string): FileRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM files WHERE id = ? AND api_key_id = ?').get(id, apiKeyId) as
      | Row
      | undefined
    return row && fileOf(row)
  }

  async fileContent(id: string, apiKeyId: string): Promise<Uint8Array | undefined> {
    if (!this.file(id, apiKeyId)) return undefined
    return readFile(join(this.#filesDir, id)).catch(() => undefined)
  }

  files(
    apiKeyId: string,
    query: { purpose?: string; limit: number; after?: string; order: 'asc' | 'desc' },
  ): Page<FileRecord> {
    const cmp = query.order === 'asc' ? '>' : '<'
    const after = this.#after('files', query.after)
    if (after === null) return { data: [], hasMore: false }
    const rows = this.#db
      .prepare(
        `SELECT * FROM files WHERE api_key_id = ?
           AND (? IS NULL OR purpose = ?)
           AND (? IS NULL OR seq ${cmp} ?)
         ORDER BY seq ${query.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ?`,
      )
      .all(
        apiKeyId,
        query.purpose ?? null,
        query.purpose ?? null,
        after ?? null,
        after ?? null,
        query.limit + 1,
      ) as Row[]
    return paged(rows, query.limit, fileOf)
  }

  async deleteFile(id: string, apiKeyId: string): Promise<boolean> {
    const deleted = this.#db.prepare('DELETE FROM files WHERE id = ? AND api_key_id = ?').run(id, apiKeyId).changes > 0
    if (deleted) await rm(join(this.#filesDir, id), { force: true })
    return deleted
  }

  addJob(job: JobRecord): void {
    const keys = Object.keys(JOB_COLUMNS) as Array<keyof typeof JOB_COLUMNS>
    this.#db
      .prepare(
        `INSERT INTO jobs (id, api_key_id, created_at, ${keys.map((k) => JOB_COLUMNS[k]).join(', ')})
         VALUES (?, ?, ?, ${keys.map(() => '?').join(', ')})`,
      )
      .run(job.id, job.apiKeyId, job.createdAt, ...keys.map((k) => column(k, job[k])))
  }

  updateJob(id: string, changes: JobChanges, from?: JobPhase): JobRecord | undefined {
    const keys = (Object.keys(changes) as Array<keyof typeof JOB_COLUMNS>).filter((k) => k in JOB_COLUMNS)
    if (keys.length) {
      const done = this.#db
        .prepare(
          `UPDATE jobs SET ${keys.map((k) => `${JOB_COLUMNS[k]} = ?`).join(', ')} WHERE id = ?${from ? ' AND phase = ?' : ''}`,
        )
        .run(...keys.map((k) => column(k, changes[k])), id, ...(from ? [from] : []))
      if (done.changes === 0) return undefined
    }
    return this.job(id)
  }

  job(id: string, apiKeyId?: string): JobRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined
    if (!row || (apiKeyId !== undefined && row.api_key_id !== apiKeyId)) return undefined
    return jobOf(row)
  }

  jobs(apiKeyId: string, query: { limit: number; after?: string }): Page<JobRecord> {
    const after = this.#after('jobs', query.after)
    if (after === null) return { data: [], hasMore: false }
    const rows = this.#db
      .prepare('SELECT * FROM jobs WHERE api_key_id = ? AND (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?')
      .all(apiKeyId, after ?? null, after ?? null, query.limit + 1) as Row[]
    return paged(rows, query.limit, jobOf)
  }

  activeJobs(): JobRecord[] {
    return (
      this.#db
        .prepare("SELECT * FROM jobs WHERE phase NOT IN ('done', 'failed', 'cancelled') ORDER BY seq")
        .all() as Row[]
    ).map(jobOf)
  }

  /** One instance follows every job here: the lease is always its own. */
  claim(): boolean {
    return true
  }

  addEvent(event: JobEvent): void {
    this.#db
      .prepare(
        'INSERT INTO job_events (id, job_id, created_at, level, type, message, data) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        event.id,
        event.jobId,
        event.createdAt,
        event.level,
        event.type,
        event.message,
        event.data ? JSON.stringify(event.data) : null,
      )
  }

  /** Newest first, as OpenAI lists them; `after` is the last event of the previous page. */
  events(jobId: string, query: { limit: number; after?: string }): Page<JobEvent> {
    const after = this.#after('job_events', query.after)
    if (after === null) return { data: [], hasMore: false }
    const rows = this.#db
      .prepare('SELECT * FROM job_events WHERE job_id = ? AND (? IS NULL OR seq < ?) ORDER BY seq DESC LIMIT ?')
      .all(jobId, after ?? null, after ?? null, query.limit + 1) as Row[]
    return paged(rows, query.limit, eventOf)
  }

  addTunedModel(model: TunedModel): void {
    this.#db
      .prepare(
        `INSERT OR REPLACE INTO tuned_models (id, api_key_id, base_model, provider, job_id, created_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(model.id, model.apiKeyId, model.baseModel, model.provider, model.jobId, model.createdAt)
  }

  tunedModel(id: string): TunedModel | undefined {
    const row = this.#db.prepare('SELECT * FROM tuned_models WHERE id = ?').get(id) as Row | undefined
    return row && tunedOf(row)
  }

  tunedModels(apiKeyId: string): TunedModel[] {
    return (
      this.#db.prepare('SELECT * FROM tuned_models WHERE api_key_id = ? ORDER BY created_at').all(apiKeyId) as Row[]
    ).map(tunedOf)
  }

  close(): void {
    this.#db.close()
  }

  /** The position of the cursor `after`: undefined without one, null when it names nothing (an empty page). */
  #after(table: 'files' | 'jobs' | 'job_events', id: string | undefined): number | undefined | null {
    if (id === undefined) return undefined
    const row = this.#db.prepare(`SELECT seq FROM ${table} WHERE id = ?`).get(id) as { seq: number } | undefined
    return row ? row.seq : null
  }
}
