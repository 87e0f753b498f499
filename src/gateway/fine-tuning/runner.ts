import { randomBytes, randomUUID } from 'node:crypto'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Address, Hex } from 'viem'
import type { Budgets } from '../../billing/budgets.ts'
import { transferFund } from '../../chain/actions/index.ts'
import type { ZgClients } from '../../chain/clients.ts'
import {
  acknowledgeDeliverable,
  type Deliverable,
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
import type { FineTuningRecords, JobChanges, JobError, JobEvent, JobPhase, JobRecord, JobStatus } from './records.ts'

export type AdapterDeployer = (params: {
  name: string
  baseModel: string
  archive: Uint8Array
}) => Promise<{ provider: Address }>

export type JobRunnerOptions = {
  records: FineTuningRecords
  /** Where this instance keeps a job's downloaded artifact until it is decrypted (`<job>/`). */
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
  /** Failed deployments of a trained adapter before the job fails (the adapter stays a file of the key's). */
  maxDeployAttempts?: number
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
export const RESULT_PURPOSE = 'fine-tune-results'

/**
 * Follows each fine-tuning job through 0G's protocol, one phase at a time, recording the phase before moving on so a
 * restart (or, on Postgres, another instance) resumes where it stopped: a payment is never made twice, a delivered
 * artifact never dropped.
 *
 * created → (pick a provider, fund its fine-tuning sub-account) → uploading → (dataset into the TEE) → creating →
 * (signed task) → training → (provider says Delivered) → delivered → (download, check the on-chain root hash,
 * acknowledge on chain) → acknowledged → (provider settles, the key is on chain; decrypt, keep the adapter as a
 * file) → deploying → (the adapter onto an inference provider) → done.
 *
 * The acknowledgement is automatic: an unacknowledged deliverable costs 30% of the fee for nothing and, once
 * settled so, blocks every later task of the wallet with that provider (0G's hackathon Bug #4).
 */
export class JobRunner {
  readonly #o: JobRunnerOptions
  readonly #holder = randomUUID()
  readonly #running = new Map<string, Promise<void>>()
  readonly #logOffsets = new Map<string, number>()
  readonly #deployFailures = new Map<string, number>()
  readonly #wake = new Map<string, () => void>()
  #rescan: NodeJS.Timeout | undefined
  #stopped = false

  constructor(options: JobRunnerOptions) {
    this.#o = options
  }

  get #pollMs(): number {
    return this.#o.pollMs ?? 5_000
  }

  /** Resumes the jobs left unfinished, and keeps looking for jobs whose follower died (another instance). */
  start(): void {
    const scan = () =>
      Promise.resolve(this.#o.records.activeJobs()).then(
        (jobs) => {
          for (const job of jobs) this.follow(job.id)
        },
        (err: Error) => this.#o.log(`fine-tuning: reading the active jobs failed: ${err.message}`),
      )
    void scan()
    this.#rescan = setInterval(scan, Math.max(this.#pollMs * 10, 10_000))
    this.#rescan.unref()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#rescan)
    for (const wake of this.#wake.values()) wake()
    await Promise.allSettled(this.#running.values())
  }

  /** Starts following a job (idempotent). */
  follow(jobId: string): void {
    if (this.#running.has(jobId) || this.#stopped) return
    const run = this.#loop(jobId).finally(() => this.#running.delete(jobId))
    this.#running.set(jobId, run)
  }

  /**
   * Cancels a job its provider has not delivered yet: the task is cancelled at the provider (nothing is charged for
   * an undelivered task) and the budget's hold released. A delivered model can no longer be cancelled.
   */
  async cancel(asked: JobRecord): Promise<JobRecord> {
    let job: JobRecord | undefined = asked
    // The runner may move the job on meanwhile (still cancellable, or not any more): try against what it is now.
    for (let tries = 0; job && tries < 5; tries++) {
      if (TERMINAL.has(job.phase)) return job
      if (!CANCELLABLE.has(job.phase)) {
        throw new JobFailure(
          'job_not_cancellable',
          `Job ${job.id} can no longer be cancelled: its provider delivered the model, which is being paid for and deployed.`,
        )
      }
      const cancelled = await this.#finish(job, 'cancelled', null)
      if (cancelled) {
        if (cancelled.taskId) await this.#cancelTask(cancelled)
        await this.#event(job.id, 'info', 'Fine-tuning job cancelled by the user; nothing was charged.')
        this.#wake.get(job.id)?.()
        return cancelled
      }
      job = await this.#o.records.job(job.id)
    }
    throw new Error(`job ${asked.id} kept changing while being cancelled`)
  }

  async #cancelTask(job: JobRecord): Promise<void> {
    try {
      const service = await getFineTuningService(this.#o.clients, job.provider!)
      if (service) await this.#o.provider.cancel(service.url, job.taskId!)
    } catch (err) {
      this.#o.log(
        `fine-tuning job ${job.id}: cancelling task ${job.taskId} at its provider failed: ${(err as Error).message}`,
      )
    }
  }

  async #loop(jobId: string): Promise<void> {
    let failures = 0
    while (!this.#stopped) {
      const job = await Promise.resolve(this.#o.records.job(jobId)).catch(() => undefined)
      if (job && TERMINAL.has(job.phase)) return
      // On Postgres another instance may hold the job: this one waits, and takes over if that one's lease runs out.
      const mine =
        job &&
        (await Promise.resolve(this.#o.records.claim(jobId, this.#holder, this.#pollMs * 6 + 30_000)).catch(
          () => false,
        ))
      if (job && mine) {
        try {
          const moved = await this.#step(job)
          failures = 0
          if (moved) continue
        } catch (err) {
          if (err instanceof JobFailure) {
            await this.#event(jobId, 'error', err.message)
            await this.#finish(job, 'failed', { code: err.code, message: err.message, param: null })
            continue
          }
          failures++
          // Transient trouble (a provider or RPC hiccup) is retried; said once in a while, not on every poll.
          if (failures === 1 || failures % 20 === 0)
            this.#o.log(`fine-tuning job ${jobId}: ${(err as Error).message} (retrying)`)
        }
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#pollMs)
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
    const file = await this.#o.records.file(job.trainingFile, job.apiKeyId)
    if (!file) throw new JobFailure('invalid_training_file', `The training file ${job.trainingFile} was deleted.`)
    const service = job.provider
      ? await this.#service(job.provider)
      : await this.#pick(job.model, file.tokens, job.hyperparameters.n_epochs)
    const fee = taskFee(file.tokens, service.pricePerToken, job.hyperparameters.n_epochs)
    if (!job.provider) {
      await this.#o.records.updateJob(job.id, { provider: service.provider })
      await this.#event(
        job.id,
        'info',
        `Provider ${service.provider} picked; the task's fee is quoted at ${fee} neuron.`,
      )
    }
    await this.#fund(job, service.provider, fee)
    if (!(await this.#move(job, 'uploading'))) return true
    await this.#event(job.id, 'info', 'Files validated, moving job to queued state')
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
    const others = (await this.#o.records.activeJobs()).filter(
      (j) => j.id !== job.id && j.provider === provider && j.fee !== null,
    )
    const owed = others.reduce((sum, j) => sum + (j.fee ?? 0n), 0n)
    await this.#o.walletTransaction(async () => {
      const account = await getFineTuningAccount(this.#o.clients, this.#o.provider.user, provider)
      const free = account ? account.balance - account.pendingRefund : 0n
      const needed = fee + owed - free
      if (needed <= 0n && account) return
      // A new sub-account takes the contract's minimum; an existing one only what is missing.
      const minimum = account ? 1n : await minTransferAmount(this.#o.clients)
      const amount = needed > minimum ? needed : minimum
      await transferFund(this.#o.clients, { provider, amount, serviceName: FINE_TUNING_SERVICE_NAME })
      await this.#event(job.id, 'info', `Moved ${amount} neuron into the fine-tuning sub-account with ${provider}.`)
    })
  }

  async #upload(job: JobRecord): Promise<boolean> {
    const service = await this.#service(job.provider!)
    const dataset = await this.#o.records.fileContent(job.trainingFile, job.apiKeyId)
    if (!dataset) throw new JobFailure('invalid_training_file', `The training file ${job.trainingFile} was deleted.`)
    const datasetHash = await this.#o.provider.uploadDataset(service.url, dataset, `${job.trainingFile}.jsonl`)
    await this.#move(job, 'creating', { datasetHash })
    return true
  }

  async #create(job: JobRecord): Promise<boolean> {
    const service = await this.#service(job.provider!)
    // The nonce is recorded before the task is sent: after a crash the task is found again by it, not sent twice.
    let nonce = job.taskNonce
    if (!nonce) {
      nonce = (BigInt(Date.now()) * 10_000n + 40n).toString()
      await this.#o.records.updateJob(job.id, { taskNonce: nonce })
    } else {
      const earlier = (await this.#o.provider.tasks(service.url)).find((t) => t.nonce === nonce)
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

  async #created(job: JobRecord, task: ProviderTask): Promise<boolean> {
    const moved = await this.#move(job, 'training', { taskId: task.id, fee: BigInt(task.fee) })
    // Cancelled while the task was being created: the task goes too.
    if (!moved) await this.#cancelTask({ ...job, taskId: task.id })
    else
      await this.#event(
        job.id,
        'info',
        `Fine-tuning job started: task ${task.id} at ${job.provider}, fee ${task.fee} neuron.`,
      )
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
        await this.#finish(job, 'cancelled', null)
        return true
      case 'Delivered':
      case 'UserAcknowledged':
      case 'Finished':
        if (await this.#move(job, 'delivered'))
          await this.#event(job.id, 'info', 'The provider delivered the trained model (encrypted); downloading it.')
        return true
      default:
        return false
    }
  }

  /** New lines of the provider's task log, as events (trainer progress as metrics). */
  async #relayLog(job: JobRecord, url: string): Promise<void> {
    const text = await this.#o.provider.log(url, job.taskId!)
    const lines = text.split('\n').filter((l) => l.trim())
    const from = this.#logOffsets.get(job.id) ?? (await this.#seenLines(job.id))
    for (const event of eventsFromLog(lines.slice(from))) {
      await this.#event(job.id, event.level, event.message, event.type, event.data)
    }
    this.#logOffsets.set(job.id, Math.max(from, lines.length))
  }

  /** After a restart: how many log lines the recorded events already hold. */
  async #seenLines(jobId: string): Promise<number> {
    const events = await this.#o.records.events(jobId, { limit: 100_000 })
    return events.data.filter((e) => e.data?.log_line !== undefined).length
  }

  /**
   * Downloads the encrypted artifact, checks it against the root hash the provider put on chain, and acknowledges
   * the deliverable: from then on the provider can only settle by publishing the key.
   */
  async #acknowledge(job: JobRecord): Promise<boolean> {
    const deliverable = await this.#deliverable(job)
    if (!deliverable) return false
    if (!deliverable.acknowledged) {
      const encrypted = await this.#encryptedArtifact(job, deliverable)
      await this.#o.walletTransaction(() =>
        acknowledgeDeliverable(this.#o.clients, { provider: job.provider!, id: job.taskId! }),
      )
      await this.#event(
        job.id,
        'info',
        `Model downloaded (${encrypted.length} bytes, its hash checked) and acknowledged on chain.`,
      )
    }
    await this.#move(job, 'acknowledged')
    return true
  }

  #deliverable(job: JobRecord): Promise<Deliverable | undefined> {
    return getDeliverable(this.#o.clients, this.#o.provider.user, job.provider!, job.taskId!)
  }

  /**
   * The encrypted artifact: this instance's copy, else downloaded from the provider and checked against the root
   * hash on chain (a provider's artifact that does not match is never acknowledged).
   */
  async #encryptedArtifact(job: JobRecord, deliverable: Deliverable): Promise<Uint8Array> {
    const dir = join(this.#o.artifactsDir, job.id)
    const file = join(dir, 'model.encrypted')
    const kept = await readFile(file).catch(() => undefined)
    if (kept && modelRootHash(kept) === deliverable.modelRootHash.toLowerCase()) return kept
    const service = await this.#service(job.provider!)
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
    return encrypted
  }

  /**
   * Waits for the provider's settlement to publish the key, decrypts the artifact with it (checking the TEE
   * signer's signature over it) and keeps the adapter as a file of the key's: what was paid for is never lost.
   */
  async #openDelivery(job: JobRecord): Promise<boolean> {
    const deliverable = await this.#deliverable(job)
    if (!deliverable?.settled) return false
    if (deliverable.encryptedSecret === '0x') {
      throw new JobFailure('settled_without_key', 'The provider settled the task without publishing its key.')
    }
    const service = await this.#service(job.provider!)
    const key = this.#o.decryptSecret(deliverable.encryptedSecret)
    let archive: Uint8Array
    try {
      archive = await decryptArtifact(await this.#encryptedArtifact(job, deliverable), key, service.teeSignerAddress)
    } catch (err) {
      if (err instanceof JobFailure) throw err
      throw new JobFailure(
        'artifact_decryption_failed',
        `The delivered model does not decrypt: ${(err as Error).message}`,
      )
    }
    const resultFile = job.resultFile ?? `file-${randomBytes(12).toString('hex')}`
    if (!job.resultFile) {
      await this.#o.records.addFile(
        {
          id: resultFile,
          apiKeyId: job.apiKeyId,
          purpose: RESULT_PURPOSE,
          filename: `${job.id}-adapter.zip`,
          bytes: archive.length,
          createdAt: Math.floor(Date.now() / 1000),
          examples: 0,
          tokens: 0,
        },
        archive,
      )
    }
    await this.#settleBudget(job)
    if (await this.#move(job, 'deploying', { resultFile })) {
      await this.#event(
        job.id,
        'info',
        `Fee of ${job.fee} neuron settled on chain; the model decrypted with its key (kept as ${resultFile}).`,
      )
    }
    await rm(join(this.#o.artifactsDir, job.id), { recursive: true, force: true })
    return true
  }

  async #settleBudget(job: JobRecord): Promise<void> {
    if (!job.reservation || !this.#o.budgets) return
    const r = JSON.parse(job.reservation) as { id: string; keyId: string; amount: string }
    await this.#o.budgets.settle({ ...r, amount: BigInt(r.amount) }, job.fee ?? 0n)
    await this.#o.records.updateJob(job.id, { reservation: null })
  }

  async #deploy(job: JobRecord): Promise<boolean> {
    const archive = job.resultFile && (await this.#o.records.fileContent(job.resultFile, job.apiKeyId))
    if (!archive)
      throw new JobFailure('adapter_missing', `The trained adapter of ${job.id} is gone (its file was deleted).`)
    const name = tunedModelName(job)
    let provider: Address
    try {
      ;({ provider } = await this.#o.deployAdapter({ name, baseModel: job.model, archive }))
    } catch (err) {
      const failures = (this.#deployFailures.get(job.id) ?? 0) + 1
      this.#deployFailures.set(job.id, failures)
      if (failures < (this.#o.maxDeployAttempts ?? 30)) throw err
      throw new JobFailure(
        'deployment_failed',
        `The model was trained and paid for, but no inference provider of ${job.model} took its adapter ` +
          `(${(err as Error).message}). The adapter is kept: GET /v1/files/${job.resultFile}/content.`,
      )
    }
    this.#deployFailures.delete(job.id)
    await this.#o.records.addTunedModel({
      id: name,
      apiKeyId: job.apiKeyId,
      baseModel: job.model,
      provider,
      jobId: job.id,
      createdAt: Math.floor(Date.now() / 1000),
    })
    if (await this.#finish(job, 'done', null, { fineTunedModel: name })) {
      await this.#event(job.id, 'info', `New fine-tuned model created: ${name} (served by ${provider})`)
      await this.#event(job.id, 'info', 'The job has successfully completed')
    }
    return true
  }

  /** Moves the job on from the phase it was read in; false when something else (a cancel) moved it meanwhile. */
  async #move(job: JobRecord, phase: JobPhase, changes: JobChanges = {}): Promise<boolean> {
    const moved = await this.#o.records.updateJob(job.id, { ...changes, phase, status: STATUS_OF[phase] }, job.phase)
    return moved !== undefined
  }

  /** Ends the job from the phase it was read in; a failed or cancelled one gets its budget hold back. */
  async #finish(
    job: JobRecord,
    phase: 'done' | 'failed' | 'cancelled',
    error: JobError | null,
    changes: JobChanges = {},
  ): Promise<JobRecord | undefined> {
    const ended = await this.#o.records.updateJob(
      job.id,
      { ...changes, phase, status: STATUS_OF[phase], error, finishedAt: Math.floor(Date.now() / 1000) },
      job.phase,
    )
    if (ended && phase !== 'done' && ended.reservation && this.#o.budgets) {
      const r = JSON.parse(ended.reservation) as { id: string; keyId: string; amount: string }
      await this.#o.budgets.settle({ ...r, amount: BigInt(r.amount) }, 0n)
      return this.#o.records.updateJob(job.id, { reservation: null })
    }
    return ended
  }

  async #event(
    jobId: string,
    level: JobEvent['level'],
    message: string,
    type: JobEvent['type'] = 'message',
    data: Record<string, unknown> | null = null,
  ): Promise<void> {
    await this.#o.records.addEvent({
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
