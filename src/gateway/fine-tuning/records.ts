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

/** What the gateway keeps of fine-tuning: files, jobs with their events, and the tuned models they produced. */
export interface FineTuningRecords {
  addFile(file: FileRecord): void
  file(id: string, apiKeyId: string): FileRecord | undefined
  files(
    apiKeyId: string,
    query: { purpose?: string; limit: number; after?: string; order: 'asc' | 'desc' },
  ): Page<FileRecord>
  deleteFile(id: string, apiKeyId: string): boolean

  addJob(job: JobRecord): void
  /** Writes the fields given; the runner's only way to move a job on. */
  updateJob(id: string, changes: Partial<Omit<JobRecord, 'id' | 'apiKeyId' | 'createdAt'>>): JobRecord
  job(id: string, apiKeyId?: string): JobRecord | undefined
  jobs(apiKeyId: string, query: { limit: number; after?: string }): Page<JobRecord>
  /** Jobs the runner has yet to finish (after a restart: the ones to resume). */
  activeJobs(): JobRecord[]

  addEvent(event: JobEvent): void
  events(jobId: string, query: { limit: number; after?: string }): Page<JobEvent>

  addTunedModel(model: TunedModel): void
  tunedModel(id: string): TunedModel | undefined
  tunedModels(apiKeyId: string): TunedModel[]

  close(): void
}
