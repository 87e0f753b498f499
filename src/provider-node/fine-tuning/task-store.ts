import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type SQLInputValue } from 'node:sqlite'
import { type Address, getAddress, type Hex } from 'viem'
import { FINAL_PROGRESS, type FineTuningTask, type Settlement, type TaskProgress } from './task.ts'

/** A dataset a user uploaded: its bytes are a file in the node's data dir, named by their keccak256. */
export type StoredDataset = {
  user: Address
  hash: Hex
  /** Where its bytes are. */
  path: string
  size: number
  examples: number
  /** The fee basis (src/fine-tuning/tokens.ts). */
  tokens: number
  createdAt: number
}

/** The same user and nonce were used by an earlier task: a replayed creation. */
export class NonceReusedError extends Error {
  override name = 'NonceReusedError'
}

/** Past these a task's log keeps its first lines and says it was cut: a trainer's output is untrusted. */
export const LOG_LIMITS = { lines: 5000, lineChars: 2000 }

const SCHEMA = `
CREATE TABLE IF NOT EXISTS datasets (
  user TEXT NOT NULL,
  hash TEXT NOT NULL,
  path TEXT NOT NULL,
  size INTEGER NOT NULL,
  examples INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user, hash)
);
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  pre_trained_model_hash TEXT NOT NULL,
  base_model TEXT NOT NULL,
  dataset_hash TEXT NOT NULL,
  training_params TEXT NOT NULL,
  fee TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  epochs INTEGER NOT NULL,
  nonce TEXT NOT NULL,
  signature TEXT NOT NULL,
  user_public_key TEXT NOT NULL,
  progress TEXT NOT NULL,
  model_root_hash TEXT,
  artifact_key TEXT,
  delivered_at INTEGER,
  deliver_index INTEGER,
  settlement TEXT,
  settle_tx_hash TEXT,
  error TEXT,
  log_lines INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_user_nonce ON tasks (user, nonce);
CREATE INDEX IF NOT EXISTS tasks_user ON tasks (user, created_at);
CREATE INDEX IF NOT EXISTS tasks_progress ON tasks (progress, created_at);
CREATE TABLE IF NOT EXISTS task_logs (
  task_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  at INTEGER NOT NULL,
  line TEXT NOT NULL,
  PRIMARY KEY (task_id, seq)
);
`

type Row = Record<string, SQLInputValue>

const toTask = (r: Row): FineTuningTask => ({
  id: r.id as string,
  user: getAddress(r.user as string),
  createdAt: r.created_at as number,
  updatedAt: r.updated_at as number,
  preTrainedModelHash: r.pre_trained_model_hash as Hex,
  baseModel: r.base_model as string,
  datasetHash: r.dataset_hash as Hex,
  trainingParams: r.training_params as string,
  fee: BigInt(r.fee as string),
  tokens: r.tokens as number,
  epochs: r.epochs as number,
  nonce: BigInt(r.nonce as string),
  signature: r.signature as Hex,
  userPublicKey: r.user_public_key as Hex,
  progress: r.progress as TaskProgress,
  modelRootHash: (r.model_root_hash as Hex | null) ?? undefined,
  artifactKey: (r.artifact_key as Hex | null) ?? undefined,
  deliveredAt: (r.delivered_at as number | null) ?? undefined,
  deliverIndex: (r.deliver_index as number | null) ?? undefined,
  settlement: (r.settlement as Settlement | null) ?? undefined,
  settleTxHash: (r.settle_tx_hash as Hex | null) ?? undefined,
  error: (r.error as string | null) ?? undefined,
})

const toDataset = (r: Row): StoredDataset => ({
  user: getAddress(r.user as string),
  hash: r.hash as Hex,
  path: r.path as string,
  size: r.size as number,
  examples: r.examples as number,
  tokens: r.tokens as number,
  createdAt: r.created_at as number,
})

/** What a task's row may change after creation. */
export type TaskUpdate = Partial<
  Pick<
    FineTuningTask,
    | 'progress'
    | 'modelRootHash'
    | 'artifactKey'
    | 'deliveredAt'
    | 'deliverIndex'
    | 'settlement'
    | 'settleTxHash'
    | 'error'
  >
>

const COLUMNS: Record<keyof TaskUpdate, string> = {
  progress: 'progress',
  modelRootHash: 'model_root_hash',
  artifactKey: 'artifact_key',
  deliveredAt: 'delivered_at',
  deliverIndex: 'deliver_index',
  settlement: 'settlement',
  settleTxHash: 'settle_tx_hash',
  error: 'error',
}

/**
 * The fine-tuning node's durable state (node:sqlite, WAL, synchronous=FULL: a task the user was told exists, and a
 * delivery the chain knows of, survive a crash): datasets, tasks and their logs. Users are stored lower-case, so
 * lookups never depend on checksum casing, and read back checksummed.
 */
export class FineTuningTaskStore {
  readonly #db: DatabaseSync

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    this.#db = new DatabaseSync(path)
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;')
    this.#db.exec(SCHEMA)
  }

  addDataset(d: Omit<StoredDataset, 'createdAt'>): StoredDataset {
    const createdAt = Date.now()
    this.#db
      .prepare(
        `INSERT INTO datasets (user, hash, path, size, examples, tokens, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (user, hash) DO UPDATE SET path = excluded.path, created_at = excluded.created_at`,
      )
      .run(d.user.toLowerCase(), d.hash.toLowerCase(), d.path, d.size, d.examples, d.tokens, createdAt)
    return this.getDataset(d.user, d.hash) as StoredDataset
  }

  getDataset(user: Address, hash: Hex): StoredDataset | undefined {
    const r = this.#db
      .prepare('SELECT * FROM datasets WHERE user = ? AND hash = ?')
      .get(user.toLowerCase(), hash.toLowerCase()) as Row | undefined
    return r && toDataset(r)
  }

  /** The user's datasets, newest first. */
  datasetsOf(user: Address): StoredDataset[] {
    return (
      this.#db
        .prepare('SELECT * FROM datasets WHERE user = ? ORDER BY created_at DESC, rowid DESC')
        .all(user.toLowerCase()) as Row[]
    ).map(toDataset)
  }

  /** Forgets a dataset (its file is the caller's to remove). */
  removeDataset(user: Address, hash: Hex): void {
    this.#db.prepare('DELETE FROM datasets WHERE user = ? AND hash = ?').run(user.toLowerCase(), hash.toLowerCase())
  }

  /** Whether a task that is not over still needs the dataset. */
  datasetInUse(user: Address, hash: Hex): boolean {
    return Boolean(
      this.#db
        .prepare(
          `SELECT 1 FROM tasks WHERE user = ? AND dataset_hash = ? AND progress NOT IN (${[...FINAL_PROGRESS].map(() => '?').join(',')}) LIMIT 1`,
        )
        .get(user.toLowerCase(), hash.toLowerCase(), ...FINAL_PROGRESS),
    )
  }

  /** Stores a new task (in Init); a NonceReusedError when the user used its nonce before. */
  insertTask(task: Omit<FineTuningTask, 'createdAt' | 'updatedAt' | 'progress'>): FineTuningTask {
    const now = Date.now()
    try {
      this.#db
        .prepare(
          `INSERT INTO tasks (id, user, created_at, updated_at, pre_trained_model_hash, base_model, dataset_hash,
             training_params, fee, tokens, epochs, nonce, signature, user_public_key, progress)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'Init')`,
        )
        .run(
          task.id,
          task.user.toLowerCase(),
          now,
          now,
          task.preTrainedModelHash,
          task.baseModel,
          task.datasetHash.toLowerCase(),
          task.trainingParams,
          task.fee.toString(),
          task.tokens,
          task.epochs,
          task.nonce.toString(),
          task.signature,
          task.userPublicKey,
        )
    } catch (err) {
      if (/UNIQUE constraint failed: tasks\.user, tasks\.nonce/.test((err as Error).message))
        throw new NonceReusedError(`nonce ${task.nonce} was used by an earlier task of ${task.user}`)
      throw err
    }
    return this.getTask(task.id) as FineTuningTask
  }

  getTask(id: string): FineTuningTask | undefined {
    const r = this.#db.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as Row | undefined
    return r && toTask(r)
  }

  /** The user's tasks, newest first. */
  tasksOf(user: Address, limit = 1000): FineTuningTask[] {
    return (
      this.#db
        .prepare('SELECT * FROM tasks WHERE user = ? ORDER BY created_at DESC, rowid DESC LIMIT ?')
        .all(user.toLowerCase(), limit) as Row[]
    ).map(toTask)
  }

  /** Tasks in any of these states, oldest first. */
  tasksIn(progress: readonly TaskProgress[]): FineTuningTask[] {
    if (!progress.length) return []
    return (
      this.#db
        .prepare(
          `SELECT * FROM tasks WHERE progress IN (${progress.map(() => '?').join(',')}) ORDER BY created_at, rowid`,
        )
        .all(...progress) as Row[]
    ).map(toTask)
  }

  /** The fees of the user's tasks that are not over (what its sub-account must still be able to pay). */
  heldFees(user: Address): bigint {
    const rows = this.#db
      .prepare(
        `SELECT fee FROM tasks WHERE user = ? AND progress NOT IN (${[...FINAL_PROGRESS].map(() => '?').join(',')})`,
      )
      .all(user.toLowerCase(), ...FINAL_PROGRESS) as Row[]
    return rows.reduce((sum, r) => sum + BigInt(r.fee as string), 0n)
  }

  /** How many tasks wait for a trainer (0G's /v1/task/pending). */
  pendingCount(): number {
    return Number((this.#db.prepare("SELECT count(*) AS n FROM tasks WHERE progress = 'Init'").get() as Row).n)
  }

  /** Changes a task's row; with `from`, only while it is in one of those states (false when it was not). */
  update(id: string, patch: TaskUpdate, from?: readonly TaskProgress[]): boolean {
    const entries = Object.entries(patch).filter(([, v]) => v !== undefined) as [keyof TaskUpdate, unknown][]
    const sets = [...entries.map(([k]) => `${COLUMNS[k]} = ?`), 'updated_at = ?']
    const values = [...entries.map(([, v]) => (typeof v === 'bigint' ? v.toString() : v) as SQLInputValue), Date.now()]
    const guard = from?.length ? ` AND progress IN (${from.map(() => '?').join(',')})` : ''
    const result = this.#db
      .prepare(`UPDATE tasks SET ${sets.join(', ')} WHERE id = ?${guard}`)
      .run(...values, id, ...(from ?? []))
    return Number(result.changes) > 0
  }

  /** Adds a line to the task's log, within LOG_LIMITS. */
  appendLog(id: string, line: string): void {
    const r = this.#db.prepare('SELECT log_lines FROM tasks WHERE id = ?').get(id) as Row | undefined
    if (!r) return
    const n = r.log_lines as number
    if (n > LOG_LIMITS.lines) return
    const text =
      n === LOG_LIMITS.lines
        ? `… the log is cut here (more than ${LOG_LIMITS.lines} lines)`
        : line.length > LOG_LIMITS.lineChars
          ? `${line.slice(0, LOG_LIMITS.lineChars)}…`
          : line
    this.#db.exec('BEGIN')
    try {
      this.#db
        .prepare('INSERT INTO task_logs (task_id, seq, at, line) VALUES (?, ?, ?, ?)')
        .run(id, n, Date.now(), text)
      this.#db.prepare('UPDATE tasks SET log_lines = ? WHERE id = ?').run(n + 1, id)
      this.#db.exec('COMMIT')
    } catch (err) {
      this.#db.exec('ROLLBACK')
      throw err
    }
  }

  /** The task's log as text, one timestamped line each. */
  log(id: string): string {
    const rows = this.#db.prepare('SELECT at, line FROM task_logs WHERE task_id = ? ORDER BY seq').all(id) as Row[]
    return rows.map((r) => `${new Date(r.at as number).toISOString()} ${r.line as string}\n`).join('')
  }

  close(): void {
    this.#db.close()
  }
}
