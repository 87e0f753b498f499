import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Dispatcher } from 'undici'
import type { Hex, LocalAccount } from 'viem'
import type { Budgets } from '../../billing/budgets.ts'
import type { ZgClients } from '../../chain/clients.ts'
import { type FineTuningService, listFineTuningServices } from '../../chain/fine-tuning/index.ts'
import { format0G } from '../../chain/units.ts'
import { badRequest, GatewayError } from '../http/openai-error.ts'
import { taskFee } from './fees.ts'
import { FineTuningProviderClient } from './provider-client.ts'
import type { FineTuningRecords, JobRecord } from './records.ts'
import type { JobRequest } from './routes.ts'
import { type AdapterDeployer, JobRunner } from './runner.ts'

export type FineTuningOptions = {
  /** Where downloaded artifacts wait until they are decrypted. */
  dataDir: string
  /** The gateway's store of fine-tuning records (SQLite, or Postgres shared by the instances). */
  records: FineTuningRecords
  clients: ZgClients
  /** The gateway's wallet: its ledger pays the providers, and it signs as their user. */
  account: LocalAccount
  dispatcher: Dispatcher
  walletTransaction: <T>(fn: () => Promise<T>) => Promise<T>
  decryptSecret: (encrypted: Hex) => Uint8Array
  deployAdapter: AdapterDeployer
  checkUrl: (url: string) => Promise<void>
  budgets?: Budgets
  /** Largest training file (default 100 MiB, 0G providers' default dataset limit). */
  fileLimit?: number
  pollMs?: number
  log: (line: string) => void
}

/** How long the list of fine-tuning services is trusted when checking a new job's model. */
const OFFERS_TTL_MS = 15_000

/** The gateway's fine-tuning: its records, the runner that follows each job, and the checks of a new job. */
export class FineTuning {
  readonly records: FineTuningRecords
  readonly runner: JobRunner
  readonly fileLimit: number
  /** Where an upload waits while it is checked. */
  readonly uploadsDir: string
  readonly #o: FineTuningOptions
  #offers: { at: number; services: Promise<FineTuningService[]> } | undefined

  constructor(options: FineTuningOptions) {
    this.#o = options
    this.uploadsDir = join(options.dataDir, 'fine-tuning', 'uploads')
    mkdirSync(this.uploadsDir, { recursive: true })
    this.fileLimit = options.fileLimit ?? 100 * 1024 * 1024
    this.records = options.records
    this.runner = new JobRunner({
      records: this.records,
      artifactsDir: join(options.dataDir, 'fine-tuning', 'jobs'),
      clients: options.clients,
      provider: new FineTuningProviderClient({ dispatcher: options.dispatcher, account: options.account }),
      walletTransaction: options.walletTransaction,
      decryptSecret: options.decryptSecret,
      deployAdapter: options.deployAdapter,
      budgets: options.budgets,
      checkUrl: options.checkUrl,
      pollMs: options.pollMs,
      log: options.log,
    })
  }

  start(): void {
    this.runner.start()
  }

  /** Stops following jobs (the records are the stores', closed with them). */
  async close(): Promise<void> {
    await this.runner.stop()
  }

  /**
   * Checks a new job (its file is the key's own fine-tune file, some provider fine-tunes its model), holds its fee
   * against the key's budget when it has one, records it and starts following it.
   */
  async createJob(apiKeyId: string, req: JobRequest, budgeted: boolean): Promise<JobRecord> {
    const file = await this.records.file(req.trainingFile, apiKeyId)
    if (file?.purpose !== 'fine-tune') {
      throw badRequest(`invalid training_file: ${req.trainingFile}`, 'training_file', 'invalid_training_file')
    }
    const offers = (await this.#services()).filter((s) => s.models.includes(req.model) && s.teeSignerAcknowledged)
    if (!offers.length) {
      throw badRequest(
        `Model ${req.model} is not available for fine-tuning: no provider on the network offers it.`,
        'model',
        'model_not_available',
      )
    }
    const id = `ftjob-${randomBytes(12).toString('hex')}`
    let reservation: string | null = null
    if (budgeted && this.#o.budgets) {
      // The dearest provider's fee is held: the runner may end up with any of them.
      let worst = 0n
      for (const s of offers) {
        const fee = taskFee(file.tokens, s.pricePerToken, req.hyperparameters.n_epochs)
        if (fee > worst) worst = fee
      }
      const held = await this.#o.budgets.reserve(apiKeyId, worst)
      if ('refused' in held) {
        throw new GatewayError(
          429,
          `This API key's budget is used up: ${format0G(held.remaining)} 0G remaining of ${format0G(held.budget)} 0G, ` +
            `and this fine-tuning job may cost up to ${format0G(worst)} 0G.`,
          { type: 'insufficient_quota', code: 'insufficient_quota', headers: { 'x-should-retry': 'false' } },
        )
      }
      reservation = JSON.stringify({ ...held, amount: held.amount.toString() })
    }
    const job: JobRecord = {
      id,
      apiKeyId,
      model: req.model,
      trainingFile: req.trainingFile,
      hyperparameters: req.hyperparameters,
      suffix: req.suffix,
      seed: req.seed,
      metadata: req.metadata,
      status: 'validating_files',
      phase: 'created',
      createdAt: Math.floor(Date.now() / 1000),
      finishedAt: null,
      provider: null,
      taskId: null,
      taskNonce: null,
      datasetHash: null,
      fee: null,
      reservation,
      trainedTokens: file.tokens * req.hyperparameters.n_epochs,
      fineTunedModel: null,
      resultFile: null,
      error: null,
    }
    await this.records.addJob(job)
    await this.records.addEvent({
      id: `ftevent-${randomBytes(12).toString('hex')}`,
      jobId: id,
      createdAt: job.createdAt,
      level: 'info',
      type: 'message',
      message: `Validating training file: ${file.id} (${file.examples} examples, ${file.tokens} tokens)`,
      data: null,
    })
    this.runner.follow(id)
    return job
  }

  #services(): Promise<FineTuningService[]> {
    const now = Date.now()
    if (!this.#offers || now - this.#offers.at > OFFERS_TTL_MS) {
      const services = listFineTuningServices(this.#o.clients)
      this.#offers = { at: now, services }
      services.catch(() => {
        this.#offers = undefined
      })
    }
    return this.#offers.services
  }
}
