import type { Address, Hex } from 'viem'
import type { FileRecord, JobEvent, JobRecord, Page, TunedModel } from './records.ts'

/** A row as either store returns it: SQLite gives numbers, Postgres gives bigints and numerics as text. */
export type Row = Record<string, string | number | bigint | null>

/** Each job field's column, in both stores. */
export const JOB_COLUMNS = {
  model: 'model',
  trainingFile: 'training_file',
  hyperparameters: 'hyperparameters',
  suffix: 'suffix',
  seed: 'seed',
  metadata: 'metadata',
  status: 'status',
  phase: 'phase',
  finishedAt: 'finished_at',
  provider: 'provider',
  taskId: 'task_id',
  taskNonce: 'task_nonce',
  datasetHash: 'dataset_hash',
  fee: 'fee',
  reservation: 'reservation',
  trainedTokens: 'trained_tokens',
  fineTunedModel: 'fine_tuned_model',
  resultFile: 'result_file',
  error: 'error',
} as const satisfies Record<Exclude<keyof JobRecord, 'id' | 'apiKeyId' | 'createdAt'>, string>

/** A job field as its column holds it: JSON for objects, text for bigints. */
export function column(key: keyof typeof JOB_COLUMNS, value: unknown): string | number | null {
  if (value === null || value === undefined) return null
  if (key === 'hyperparameters' || key === 'metadata' || key === 'error') return JSON.stringify(value)
  if (typeof value === 'bigint') return value.toString()
  return value as string | number
}

const json = <T>(v: unknown): T | null => (typeof v === 'string' ? (JSON.parse(v) as T) : null)
const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v))

export function jobOf(row: Row): JobRecord {
  return {
    id: String(row.id),
    apiKeyId: String(row.api_key_id),
    model: String(row.model),
    trainingFile: String(row.training_file),
    hyperparameters: json(row.hyperparameters)!,
    suffix: text(row.suffix),
    seed: Number(row.seed),
    metadata: json(row.metadata),
    status: String(row.status) as JobRecord['status'],
    phase: String(row.phase) as JobRecord['phase'],
    createdAt: Number(row.created_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    provider: text(row.provider) as Address | null,
    taskId: text(row.task_id),
    taskNonce: text(row.task_nonce),
    datasetHash: text(row.dataset_hash) as Hex | null,
    fee: row.fee === null ? null : BigInt(row.fee as string),
    reservation: text(row.reservation),
    trainedTokens: row.trained_tokens === null ? null : Number(row.trained_tokens),
    fineTunedModel: text(row.fine_tuned_model),
    resultFile: text(row.result_file),
    error: json(row.error),
  }
}

export function fileOf(row: Row): FileRecord {
  return {
    id: String(row.id),
    apiKeyId: String(row.api_key_id),
    purpose: String(row.purpose),
    filename: String(row.filename),
    bytes: Number(row.bytes),
    createdAt: Number(row.created_at),
    examples: Number(row.examples),
    tokens: Number(row.tokens),
  }
}

export function eventOf(row: Row): JobEvent {
  return {
    id: String(row.id),
    jobId: String(row.job_id),
    createdAt: Number(row.created_at),
    level: String(row.level) as JobEvent['level'],
    type: String(row.type) as JobEvent['type'],
    message: String(row.message),
    data: json(row.data),
  }
}

/** Rows after the cursor `after`, one more than asked for, to tell whether there are more. */
export function paged<T>(rows: Row[], limit: number, of: (row: Row) => T): Page<T> {
  return { data: rows.slice(0, limit).map(of), hasMore: rows.length > limit }
}

export function tunedOf(row: Row): TunedModel {
  return {
    id: String(row.id),
    apiKeyId: String(row.api_key_id),
    baseModel: String(row.base_model),
    provider: String(row.provider) as Address,
    jobId: String(row.job_id),
    createdAt: Number(row.created_at),
  }
}
