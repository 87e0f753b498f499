import type { Address, Hex } from 'viem'
import type { Hyperparameters } from '../../fine-tuning/hyperparameters.ts'

/** An uploaded file (`/v1/files`): its metadata; the bytes are on disk beside the database. */
export type FileRecord = {
  id: string
  apiKeyId: string
  purpose: string
  filename: string
  bytes: number
  createdAt: number
  /** For fine-tune files: the examples and the tokens they hold (the fee basis). */
  examples: number
  tokens: number
}

export type JobStatus = 'validating_files' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled'

/**
 * Where a job is in the protocol, finer than its OpenAI status: each phase is one step the runner can redo after a
 * restart without repeating a payment (see runner.ts).
 */
export type JobPhase =
  | 'created'
  | 'uploading'
  | 'creating'
  | 'training'
  | 'delivered'
  | 'acknowledged'
  | 'deploying'
  | 'done'
  | 'failed'
  | 'cancelled'

export type JobError = { code: string; message: string; param: string | null }

export type JobRecord = {
  id: string
  apiKeyId: string
  model: string
  trainingFile: string
  hyperparameters: Hyperparameters
  suffix: string | null
  seed: number
  metadata: Record<string, string> | null
  status: JobStatus
  phase: JobPhase
  createdAt: number
  finishedAt: number | null
  /** The fine-tuning provider picked for the job, and its task there. */
  provider: Address | null
  taskId: string | null
  /** The nonce the task was created with: finds the task again after a crash between sending and recording it. */
  taskNonce: string | null
  datasetHash: Hex | null
  /** The fee the provider quoted for the task, in neuron. */
  fee: bigint | null
  /** The budget reservation held for the fee, if the key has a budget. */
  reservation: string | null
  trainedTokens: number | null
  fineTunedModel: string | null
  /** The trained adapter (a zip), kept as a file of the key's (`purpose: fine-tune-results`). */
  resultFile: string | null
  error: JobError | null
}

export type JobEvent = {
  id: string
  jobId: string
  createdAt: number
  level: 'info' | 'warn' | 'error'
  type: 'message' | 'metrics'
  message: string
  data: Record<string, unknown> | null
}

/** A fine-tuned model deployed for inference: the adapter, which inference provider holds it, whose it is. */
export type TunedModel = {
  id: string
  apiKeyId: string
  baseModel: string
  /** The inference provider the adapter was deployed to. */
  provider: Address
  jobId: string
  createdAt: number
}

export type Page<T> = { data: T[]; hasMore: boolean }

type Awaitable<T> = T | Promise<T>

export type JobChanges = Partial<Omit<JobRecord, 'id' | 'apiKeyId' | 'createdAt'>>

/**
 * What the gateway keeps of fine-tuning: files with their bytes, jobs with their events, and the tuned models they
 * produced. In SQLite for one instance (sqlite-records.ts), or in Postgres, shared by several (postgres-records.ts).
 */
export interface FineTuningRecords {
  /** Keeps a file and its bytes (written before the record, so a listed file always has them). */
  addFile(file: FileRecord, content: Uint8Array): Awaitable<void>
  file(id: string, apiKeyId: string): Awaitable<FileRecord | undefined>
  /** The file's bytes, if the file is `apiKeyId`'s. */
  fileContent(id: string, apiKeyId: string): Awaitable<Uint8Array | undefined>
  files(
    apiKeyId: string,
    query: { purpose?: string; limit: number; after?: string; order: 'asc' | 'desc' },
  ): Awaitable<Page<FileRecord>>
  deleteFile(id: string, apiKeyId: string): Awaitable<boolean>

  addJob(job: JobRecord): Awaitable<void>
  /**
   * Writes the fields given; with `from`, only while the job is still in that phase (undefined otherwise): a job
   * cancelled meanwhile is not moved on by a step that was already running.
   */
  updateJob(id: string, changes: JobChanges, from?: JobPhase): Awaitable<JobRecord | undefined>
  job(id: string, apiKeyId?: string): Awaitable<JobRecord | undefined>
  jobs(apiKeyId: string, query: { limit: number; after?: string }): Awaitable<Page<JobRecord>>
  /** Jobs the runner has yet to finish (after a restart: the ones to resume). */
  activeJobs(): Awaitable<JobRecord[]>
  /**
   * Takes or renews the lease on following a job for `holder` (one instance at a time follows a job); false while
   * another holder's lease runs.
   */
  claim(jobId: string, holder: string, leaseMs: number): Awaitable<boolean>

  addEvent(event: JobEvent): Awaitable<void>
  events(jobId: string, query: { limit: number; after?: string }): Awaitable<Page<JobEvent>>

  addTunedModel(model: TunedModel): Awaitable<void>
  tunedModel(id: string): Awaitable<TunedModel | undefined>
  tunedModels(apiKeyId: string): Awaitable<TunedModel[]>

  close(): Awaitable<void>
}
