import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Address, Hex } from 'viem'
import type { Budgets } from '../../billing/budgets.ts'
import { transferFund } from '../../chain/actions/index.ts'
import type { ZgClients } from '../../chain/clients.ts'
import {
  acknowledgeDeliverable,
  FINE_TUNING_SERVICE_NAME,
  type FineTuningService,
  getDeliverable,
  getFineTuningAccount,
  getFineTuningService,
  listFineTuningServices,
} from '../../chain/fine-tuning/index.ts'
import { decryptArtifact, modelRootHash } from '../../fine-tuning/artifact.ts'
import { trainingParamsOf } from '../../fine-tuning/hyperparameters.ts'
import { minTransferAmount, taskFee } from './fees.ts'
import type { FineTuningProviderClient, ProviderTask } from './provider-client.ts'
import { eventsFromLog } from './provider-log.ts'
import type { FineTuningRecords, JobError, JobEvent, JobPhase, JobRecord, JobStatus } from './records.ts'

export type AdapterDeployer = (params: {
  name: string
  baseModel: string
  archive: Uint8Array
}) => Promise<{ provider: Address }>

export type JobRunnerOptions = {
  records: FineTuningRecords
  /** Where uploaded files are (`<id>.jsonl`) and artifacts go (`<job>/`). */
  filesDir: string
  artifactsDir: string
  clients: ZgClients
  provider: FineTuningProviderClient
  /** Runs a wallet transaction alone: the escrow's queue, so fine-tuning never races it for a nonce. */
  walletTransaction: <T>(fn: () => Promise<T>) => Promise<T>
  /** Opens what the provider ECIES-encrypted to the wallet: the artifact's key. */
  decryptSecret: (encrypted: Hex) => Uint8Array
  /** Puts a decrypted adapter on an inference provider that serves its base model. */
  deployAdapter: AdapterDeployer
  /** Budgets, for a key's reservation of the fee; settled with what the chain charged. */
  budgets?: Budgets
  /** Whether a provider URL is safe to call (private addresses refused unless allowed). */
  checkUrl: (url: string) => Promise<void>
  /** How often a running job asks its provider and the chain for news (default 5 s). */
  pollMs?: number
  log: (line: string) => void
}

/** Thrown by a phase to end the job as failed with this error; any other error is retried on the next poll. */
export class JobFailure extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

const STATUS_OF: Record<JobPhase, JobStatus> = {
  created: 'validating_files',
  uploading: 'queued',
  creating: 'queued',
  training: 'running',
  delivered: 'running',
  acknowledged: 'running',
  deploying: 'running',
  done: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
}

const TERMINAL = new Set<JobPhase>(['done', 'failed', 'cancelled'])
/** Phases where the provider has not delivered yet: the job can still be cancelled for nothing. */
const CANCELLABLE = new Set<JobPhase>(['created', 'uploading', 'creating', 'training'])

/**
 * Follows each fine-tuning job through 0G's protocol, one phase at a time, recording the phase before moving on so a
 * restart resumes where it stopped (a payment is never made twice, a delivered artifact never dropped):
 *
 * created → (pick a provider, fund its fine-tuning sub-account) → uploading → (dataset into the TEE) → creating →
 * (signed task) → training → (provider says Delivered) → delivered → (download, check the on-chain hash,
 * acknowledge on chain) → acknowledged → (provider settles, the key is on chain; decrypt it and the artifact) →
 * deploying → (the adapter onto an inference provider) → done.
 *
 * The acknowledgement is automatic: an unacknowledged deliverable would block the wallet's later tasks with that
 * provider (0G's hackathon Bug #4), and cost 30% of the fee for nothing.
 */
export class JobRunner {
  readonly #o: JobRunnerOptions
  readonly #running = new Map<string, Promise<void>>()
  readonly #logOffsets = new Map<string, number>()
  #stopped = false
  #wake = new Map<string, () => void>()

  constructor(options: JobRunnerOptions) {
    this.#o = options
  }

  /** Resumes the jobs a previous run left unfinished. */
  start(): void {
    for (const job of this.#o.records.activeJobs()) this.follow(job.id)
  }

  async stop(): Promise<void> {
    this.#stopped = true
    for (const wake of this.#wake.values()) wake()
    await Promise.allSettled(this.#running.values())
  }

  /** Starts following a job (idempotent). */
  follow(jobId: string): void {
    if (this.#running.has(jobId) || this.#stopped) return
    const run = this.#loop(jobId).finally(() => this.#running.delete(jobId))
    this.#running.set(jobId, run)
  }

  /** Waits until the job has reached a terminal phase or the runner stopped (tests, the CLI's --wait). */
  async settled(jobId: string): Promise<void> {
    await this.#running.get(jobId)
  }

  /**
   * Cancels a job the provider has not delivered yet: the task is cancelled at the provider (nothing is charged for
   * an undelivered task) and the budget's hold released. A delivered model can no longer be cancelled.
   */
  async cancel(job: JobRecord): Promise<JobRecord> {
    if (TERMINAL.has(job.phase)) return job
    if (!CANCELLABLE.has(job.phase)) {
      throw new JobFailure(
        'job_not_cancellable',
        `Job ${job.id} can no longer be cancelled: its provider has delivered the model, which is being paid for and deployed.`,
      )
    }
    if (job.taskId && job.provider) {
      const service = await getFineTuningService(this.#o.clients, job.provider)
      if (service) await this.#o.provider.cancel(service.url, job.taskId)
    }
    this.#event(job.id, 'info', 'Fine-tuning job cancelled by the user; nothing was charged.')
    const cancelled = this.#finish(job.id, 'cancelled', null)
    this.#wake.get(job.id)?.()
    return cancelled
  }

  async #loop(jobId: string): Promise<void> {
    const pollMs = this.#o.pollMs ?? 5_000
    let failures = 0
    while (!this.#stopped) {
      const job = this.#o.records.job(jobId)
      if (!job || TERMINAL.has(job.phase)) return
      try {
        const moved = await this.#step(job)
        failures = 0
        if (moved) continue
      } catch (err) {
        if (err instanceof JobFailure) {
          this.#event(jobId, 'error', err.message)
          this.#finish(jobId, 'failed', { code: err.code, message: err.message, param: null })
          return
        }
        failures++
        // Transient trouble (a provider or RPC hiccup) is retried; said once in a while, not on every poll.
        if (failures === 1 || failures % 20 === 0)
          this.#o.log(`fine-tuning job ${jobId}: ${(err as Error).message} (retrying)`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs)
        this.#wake.set(jobId, () => {
          clearTimeout(timer)
          resolve()
        })
      })
      this.#wake.delete(jobId)
    }
  }

  /** One step of the job; true when it moved to another phase (the next step runs at once). */
  async #step(job: JobRecord): Promise<boolean> {
    switch (job.phase) {
      case 'created':
        return this.#prepare(job)
      case 'uploading':
        return this.#upload(job)
      case 'creating':
        return this.#create(job)
      case 'training':
        return this.#watchTraining(job)
      case 'delivered':
        return this.#acknowledge(job)
      case 'acknowledged':
        return this.#openDelivery(job)
      case 'deploying':
        return this.#deploy(job)
      default:
        return false
    }
  }

  /** Picks the provider (cheapest of those that fine-tune the model), then funds its sub-account for the fee. */
  async #prepare(job: JobRecord): Promise<boolean> {
    const file = this.#o.records.file(job.trainingFile, job.apiKeyId)
    if (!file) throw new JobFailure('invalid_training_file', `The training file ${job.trainingFile} was deleted.`)
    const service = job.provider
      ? await this.#service(job.provider)
      : await this.#pick(job.model, file.tokens, job.hyperparameters.n_epochs)
    const fee = taskFee(file.tokens, service.pricePerToken, job.hyperparameters.n_epochs)
    if (!job.provider) {
      this.#o.records.updateJob(job.id, { provider: service.provider })
      this.#event(job.id, 'info', `Provider ${service.provider} picked; the task's fee is quoted at ${fee} neuron.`)
    }
    await this.#fund(job, service.provider, fee)
    this.#event(job.id, 'info', 'Files validated, moving job to queued state')
    this.#move(job.id, 'uploading')
    return true
  }

  async #pick(model: string, tokens: number, epochs: number): Promise<FineTuningService> {
    const services = (await listFineTuningServices(this.#o.clients)).filter(
      (s) => s.models.includes(model) && s.teeSignerAcknowledged,
    )
    const safe: FineTuningService[] = []
    for (const s of services) {
      try {
        await this.#o.checkUrl(s.url)
        safe.push(s)
      } catch {}
    }
    if (!safe.length) {
      throw new JobFailure(
        'model_not_available',
        `No fine-tuning provider on the network offers ${model} (with an acknowledged TEE signer and a reachable URL).`,
      )
    }
    // Free providers first, then the cheapest: the fee is tokens × price × epochs for all of them.
    safe.sort(
      (a, b) =>
        Number(a.occupied) - Number(b.occupied) ||
        (taskFee(tokens, a.pricePerToken, epochs) < taskFee(tokens, b.pricePerToken, epochs) ? -1 : 1),
    )
    return safe[0]!
  }

  async #service(provider: Address): Promise<FineTuningService> {
    const service = await getFineTuningService(this.#o.clients, provider)
    if (!service) throw new JobFailure('provider_gone', `The fine-tuning provider ${provider} removed its service.`)
    await this.#o.checkUrl(service.url)
    return service
  }

  /**
   * Tops the sub-account up so its free balance covers this fee and every other unfinished task of the wallet with
   * that provider: the provider refuses a task its escrow cannot pay.
   */
  async #fund(job: JobRecord, provider: Address, fee: bigint): Promise<void> {
    const owed = this.#o.records
      .activeJobs()
      .filter((j) => j.id !== job.id && j.provider === provider && j.fee !== null && j.phase !== 'created')
      .reduce((sum, j) => sum + (j.fee ?? 0n), 0n)
    await this.#o.walletTransaction(async () => {
      const account = await getFineTuningAccount(this.#o.clients, this.#o.provider.user, provider)
      const free = account ? account.balance - account.pendingRefund : 0n
      const needed = fee + owed - free
      if (needed <= 0n && account) return
      // A new sub-account takes the contract's minimum; an existing one only what is missing.
      const minimum = account ? 1n : await minTransferAmount(this.#o.clients)
      const amount = needed > minimum ? needed : minimum
      await transferFund(this.#o.clients, { provider, amount, serviceName: FINE_TUNING_SERVICE_NAME })
      this.#event(job.id, 'info', `Moved ${amount} neuron into the fine-tuning sub-account with ${provider}.`)
    })
  }

  async #upload(job: JobRecord): Promise<boolean> {
    const service = await this.#service(job.provider!)
    const dataset = await readFile(join(this.#o.filesDir, `${job.trainingFile}.jsonl`))
    const datasetHash = await this.#o.provider.uploadDataset(service.url, dataset, `${job.trainingFile}.jsonl`)
    this.#o.records.updateJob(job.id, { datasetHash })
    this.#move(job.id, 'creating')
    return true
  }

  async #create(job: JobRecord): Promise<boolean> {
    const service = await this.#service(job.provider!)
    // The nonce is recorded before the task is sent: after a crash the task is found again by it, not sent twice.
    let nonce = job.taskNonce
    if (!nonce) {
      nonce = (BigInt(Date.now()) * 10_000n + 40n).toString()
      this.#o.records.updateJob(job.id, { taskNonce: nonce })
    } else {
      const earlier = (await this.#o.provider.tasks(service.url)).find((t) => (t as { nonce?: string }).nonce === nonce)
      if (earlier) return this.#created(job, earlier)
    }
    const modelHash = (await this.#o.provider.model(service.url, job.model)).hash
    const id = await this.#o.provider.createTask(service.url, {
      datasetHash: job.datasetHash!,
      trainingParams: trainingParamsOf(job.hyperparameters),
      preTrainedModelHash: modelHash,
      nonce: BigInt(nonce),
    })
    return this.#created(job, await this.#o.provider.task(service.url, id))
  }

  #created(job: JobRecord, task: ProviderTask): boolean {
    this.#o.records.updateJob(job.id, { taskId: task.id, fee: BigInt(task.fee) })
    this.#event(job.id, 'info', `Fine-tuning job started: task ${task.id} at ${job.provider}, fee ${task.fee} neuron.`)
    this.#move(job.id, 'training')
    return true
  }

  async #watchTraining(job: JobRecord): Promise<boolean> {
    const service = await this.#service(job.provider!)
    const task = await this.#o.provider.task(service.url, job.taskId!)
    await this.#relayLog(job, service.url)
    switch (task.progress) {
      case 'Failed':
        throw new JobFailure('training_failed', 'The provider reports that training failed; nothing was charged.')
      case 'Cancelled':
        this.#finish(job.id, 'cancelled', null)
        return true
      case 'Delivered':
      case 'UserAcknowledged':
      case 'Finished':
        this.#event(job.id, 'info', 'The provider delivered the trained model (encrypted); downloading it.')
        this.#move(job.id, 'delivered')
        return true
      default:
        return false
    }
  }

  /** New lines of the provider's task log, as events (trainer progress as metrics). */
  async #relayLog(job: JobRecord, url: string): Promise<void> {
    const text = await this.#o.provider.log(url, job.taskId!)
    const lines = text.split('\n').filter((l) => l.trim())
    const from = this.#logOffsets.get(job.id) ?? this.#seenLines(job.id)
    for (const event of eventsFromLog(lines.slice(from))) {
      this.#event(job.id, event.level, event.message, event.type, event.data)
    }
    this.#logOffsets.set(job.id, lines.length)
  }

  /** After a restart: how many log lines the recorded events already hold. */
  #seenLines(jobId: string): number {
    return this.#o.records.events(jobId, { limit: 100_000 }).data.filter((e) => e.data?.log_line !== undefined).length
  }

  /**
   * Downloads the encrypted artifact, checks it against the root hash the provider put on chain, and acknowledges
   * the deliverable: from then on the provider can only settle by publishing the key.
   */
  async #acknowledge(job: JobRecord): Promise<boolean> {
    const service = await this.#service(job.provider!)
    const user = this.#o.provider.user
    const deliverable = await getDeliverable(this.#o.clients, user, job.provider!, job.taskId!)
    if (!deliverable) return false
    const dir = join(this.#o.artifactsDir, job.id)
    const file = join(dir, 'model.encrypted')
    if (!deliverable.acknowledged) {
      const encrypted = await this.#o.provider.downloadArtifact(service.url, job.taskId!)
      if (modelRootHash(encrypted) !== deliverable.modelRootHash.toLowerCase()) {
        throw new JobFailure(
          'artifact_hash_mismatch',
          `The provider's artifact does not match the root hash it put on chain (${deliverable.modelRootHash}); it was not acknowledged.`,
        )
      }
      await mkdir(dir, { recursive: true })
      await writeFile(`${file}.tmp`, encrypted)
      await rename(`${file}.tmp`, file)
      await this.#o.walletTransaction(() =>
        acknowledgeDeliverable(this.#o.clients, { provider: job.provider!, id: job.taskId! }),
      )
      this.#event(
        job.id,
        'info',
        `Model downloaded (${encrypted.length} bytes, hash checked) and acknowledged on chain.`,
      )
    }
    this.#move(job.id, 'acknowledged')
    return true
  }

  /** Waits for the provider's settlement to publish the key, then decrypts the artifact with it. */
  async #openDelivery(job: JobRecord): Promise<boolean> {
    const deliverable = await getDeliverable(this.#o.clients, this.#o.provider.user, job.provider!, job.taskId!)
    if (!deliverable?.settled) return false
    if (deliverable.encryptedSecret === '0x') {
      throw new JobFailure('settled_without_key', 'The provider settled the task without publishing its key.')
    }
    const service = await this.#service(job.provider!)
    const dir = join(this.#o.artifactsDir, job.id)
    const key = this.#o.decryptSecret(deliverable.encryptedSecret)
    const encrypted = await readFile(join(dir, 'model.encrypted'))
    let archive: Uint8Array
    try {
      archive = await decryptArtifact(encrypted, key, service.teeSignerAddress)
    } catch (err) {
      throw new JobFailure(
        'artifact_decryption_failed',
        `The delivered model does not decrypt: ${(err as Error).message}`,
      )
    }
    await writeFile(join(dir, 'adapter.zip'), archive)
    await this.#settleBudget(job, deliverable)
    this.#event(job.id, 'info', `Fee of ${job.fee} neuron settled on chain; the model's key decrypted it.`)
    this.#move(job.id, 'deploying')
    return true
  }

  async #settleBudget(job: JobRecord, _deliverable: unknown): Promise<void> {
    if (!job.reservation || !this.#o.budgets) return
    const reservation = JSON.parse(job.reservation) as { id: string; keyId: string; amount: string }
    await this.#o.budgets.settle({ ...reservation, amount: BigInt(reservation.amount) }, job.fee ?? 0n)
    this.#o.records.updateJob(job.id, { reservation: null })
  }

  async #deploy(job: JobRecord): Promise<boolean> {
    const archive = await readFile(join(this.#o.artifactsDir, job.id, 'adapter.zip'))
    const name = tunedModelName(job)
    const { provider } = await this.#o.deployAdapter({ name, baseModel: job.model, archive })
    this.#o.records.addTunedModel({
      id: name,
      apiKeyId: job.apiKeyId,
      baseModel: job.model,
      provider,
      jobId: job.id,
      createdAt: Math.floor(Date.now() / 1000),
    })
    this.#o.records.updateJob(job.id, { fineTunedModel: name })
    this.#event(job.id, 'info', `New fine-tuned model created: ${name} (served by ${provider})`)
    this.#event(job.id, 'info', 'The job has successfully completed')
    this.#finish(job.id, 'done', null)
    await rm(join(this.#o.artifactsDir, job.id, 'model.encrypted'), { force: true })
    return true
  }

  #move(jobId: string, phase: JobPhase): void {
    this.#o.records.updateJob(jobId, { phase, status: STATUS_OF[phase] })
  }

  #finish(jobId: string, phase: 'done' | 'failed' | 'cancelled', error: JobError | null): JobRecord {
    const job = this.#o.records.updateJob(jobId, {
      phase,
      status: STATUS_OF[phase],
      error,
      finishedAt: Math.floor(Date.now() / 1000),
    })
    // A failed or cancelled job was not charged: its budget hold goes back.
    if (phase !== 'done' && job.reservation && this.#o.budgets) {
      const r = JSON.parse(job.reservation) as { id: string; keyId: string; amount: string }
      void Promise.resolve(this.#o.budgets.settle({ ...r, amount: BigInt(r.amount) }, 0n)).catch(() => {})
      return this.#o.records.updateJob(jobId, { reservation: null })
    }
    return job
  }

  #event(
    jobId: string,
    level: JobEvent['level'],
    message: string,
    type: JobEvent['type'] = 'message',
    data: Record<string, unknown> | null = null,
  ): void {
    this.#o.records.addEvent({
      id: `ftevent-${randomBytes(12).toString('hex')}`,
      jobId,
      createdAt: Math.floor(Date.now() / 1000),
      level,
      type,
      message,
      data,
    })
  }
}

/** OpenAI's fine-tuned model name, `ft:<base>:<suffix>:<id>` (the suffix empty when none was given). */
export function tunedModelName(job: Pick<JobRecord, 'id' | 'model' | 'suffix'>): string {
  return `ft:${job.model}:${job.suffix ?? ''}:${job.id.replace(/^ftjob-/, '')}`
}
