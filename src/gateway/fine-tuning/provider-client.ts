import type { Dispatcher } from 'undici'
import type { Address, Hex, LocalAccount } from 'viem'
import {
  cancelDigest,
  datasetUploadDigest,
  loraDownloadDigest,
  signUserDigest,
  taskDigest,
} from '../../fine-tuning/signatures.ts'
import { GuardedFetchError, type GuardedRequest, requestGuarded } from '../../http/guarded-json.ts'

/** A task as a 0G fine-tuning provider reports it (the SDK's `Task`). */
export type ProviderTask = {
  id: string
  createdAt?: string
  updatedAt?: string
  progress: string
  fee: string
  datasetHash?: string
  preTrainedModelHash?: string
  nonce?: string
}

/** A model a provider can fine-tune (`GET /v1/model/{name}`). */
export type ProviderModel = { name: string; hash: string }

/** A provider's answer that is not what the protocol says, or an error it reported. */
export class FineTuningProviderError extends Error {
  override name = 'FineTuningProviderError'
  readonly status: number | undefined

  constructor(message: string, status?: number) {
    super(message)
    this.status = status
  }
}

export type ProviderClientOptions = {
  /** The guarded agent: a provider's URL is a stranger's, so private addresses are refused unless allowed. */
  dispatcher: Dispatcher
  /** The wallet whose sub-account pays: it signs every user request. */
  account: LocalAccount
  /** Per exchange (default 60 s; uploads and downloads get `transferTimeoutMs`). */
  timeoutMs?: number
  transferTimeoutMs?: number
  /** Largest artifact accepted from a provider (default 2 GiB). */
  maxArtifactBytes?: number
}

const MAX_ANSWER = 1024 * 1024
const MAX_LOG = 4 * 1024 * 1024

/**
 * The user side of 0G's fine-tuning provider API (0g-protocol.md §6), for the gateway's wallet: each call signed the
 * way the official SDK signs it, each answer size- and time-bounded. Errors carry the provider's `error` text.
 */
export class FineTuningProviderClient {
  readonly #o: Required<ProviderClientOptions>

  constructor(options: ProviderClientOptions) {
    this.#o = {
      timeoutMs: 60_000,
      transferTimeoutMs: 30 * 60_000,
      maxArtifactBytes: 2 * 1024 ** 3,
      ...options,
    }
  }

  get user(): Address {
    return this.#o.account.address
  }

  /** `POST /v1/user/{addr}/dataset`: the dataset straight into the provider's TEE; its hash names it in the task. */
  async uploadDataset(url: string, dataset: Uint8Array, filename: string): Promise<Hex> {
    const timestamp = Math.floor(Date.now() / 1000)
    const signature = await signUserDigest(this.#o.account, datasetUploadDigest(this.user, timestamp))
    const boundary = `zg-${crypto.randomUUID()}`
    const part = (name: string, value: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename.replace(/["\r\n]/g, '_')}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
      dataset,
      Buffer.from(`\r\n${part('signature', signature)}${part('timestamp', String(timestamp))}--${boundary}--\r\n`),
    ])
    const answer = await this.#json(url, `/v1/user/${this.user}/dataset`, {
      method: 'POST',
      body,
      contentType: `multipart/form-data; boundary=${boundary}`,
      timeoutMs: this.#o.transferTimeoutMs,
    })
    const hash = (answer as { datasetHash?: unknown }).datasetHash
    if (typeof hash !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(hash))
      throw new FineTuningProviderError('the provider answered the dataset upload without a datasetHash')
    return hash as Hex
  }

  /** `POST /v1/user/{addr}/task`: the provider quotes the fee itself and answers the task's id. */
  async createTask(
    url: string,
    task: { datasetHash: Hex; trainingParams: string; preTrainedModelHash: string; nonce: bigint },
  ): Promise<string> {
    const signature = await signUserDigest(this.#o.account, taskDigest(this.user, task.nonce, task.datasetHash))
    const answer = await this.#json(url, `/v1/user/${this.user}/task`, {
      method: 'POST',
      contentType: 'application/json',
      body: JSON.stringify({
        userAddress: this.user,
        datasetHash: task.datasetHash,
        trainingParams: task.trainingParams,
        preTrainedModelHash: task.preTrainedModelHash,
        fee: '0',
        nonce: task.nonce.toString(),
        signature,
        wait: true,
      }),
    })
    const id = (answer as { id?: unknown }).id
    if (typeof id !== 'string' || !isTaskId(id)) throw new FineTuningProviderError('the provider answered no task id')
    return id
  }

  async tasks(url: string): Promise<ProviderTask[]> {
    const answer = await this.#json(url, `/v1/user/${this.user}/task`, {})
    if (!Array.isArray(answer)) throw new FineTuningProviderError('the provider listed tasks as something else')
    return answer.map(taskOf)
  }

  async task(url: string, id: string): Promise<ProviderTask> {
    return taskOf(await this.#json(url, `/v1/user/${this.user}/task/${checkedId(id)}`, {}))
  }

  /** The task's log, as text (the trainer's progress lines among the provider's own). */
  async log(url: string, id: string): Promise<string> {
    const res = await this.#send(url, `/v1/user/${this.user}/task/${checkedId(id)}/log`, { maxBytes: MAX_LOG })
    return res.body.toString('utf8')
  }

  async cancel(url: string, id: string): Promise<void> {
    const signature = await signUserDigest(this.#o.account, cancelDigest(checkedId(id)))
    await this.#send(url, `/v1/user/${this.user}/task/${id}/cancel`, {
      method: 'POST',
      contentType: 'application/json',
      body: JSON.stringify({ signature }),
    })
  }

  /** `POST …/task/{id}/lora`: the encrypted artifact, straight from the TEE. */
  async downloadArtifact(url: string, id: string): Promise<Uint8Array> {
    const timestamp = Math.floor(Date.now() / 1000)
    const signature = await signUserDigest(this.#o.account, loraDownloadDigest(checkedId(id), timestamp))
    const res = await this.#send(url, `/v1/user/${this.user}/task/${id}/lora`, {
      method: 'POST',
      contentType: 'application/json',
      body: JSON.stringify({ signature, timestamp }),
      maxBytes: this.#o.maxArtifactBytes,
      timeoutMs: this.#o.transferTimeoutMs,
    })
    return res.body
  }

  /** `GET /v1/model/{name}`: a model the provider fine-tunes, with the hash a task names it by. */
  async model(url: string, name: string): Promise<ProviderModel> {
    const answer = (await this.#json(url, `/v1/model/${encodeURIComponent(name)}`, {})) as Partial<ProviderModel>
    if (typeof answer.hash !== 'string') throw new FineTuningProviderError(`the provider gave no hash for ${name}`)
    return { name, hash: answer.hash }
  }

  async #json(url: string, path: string, request: Partial<GuardedRequest>): Promise<unknown> {
    const res = await this.#send(url, path, request)
    try {
      return JSON.parse(res.body.toString('utf8'))
    } catch {
      throw new FineTuningProviderError(`${path}: the provider's answer is not JSON`)
    }
  }

  async #send(url: string, path: string, request: Partial<GuardedRequest>) {
    let res: Awaited<ReturnType<typeof requestGuarded>>
    try {
      res = await requestGuarded(this.#o.dispatcher, `${url.replace(/\/+$/, '')}${path}`, {
        timeoutMs: this.#o.timeoutMs,
        maxBytes: MAX_ANSWER,
        ...request,
      })
    } catch (err) {
      if (err instanceof GuardedFetchError) throw new FineTuningProviderError(err.message)
      throw err
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw new FineTuningProviderError(
        `${request.method ?? 'GET'} ${path} answered ${res.statusCode}: ${errorText(res.body)}`,
        res.statusCode,
      )
    }
    return res
  }
}

const isTaskId = (id: string) =>
  /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(id)

function checkedId(id: string): string {
  if (!isTaskId(id)) throw new FineTuningProviderError(`not a task id: ${id.slice(0, 64)}`)
  return id
}

function taskOf(raw: unknown): ProviderTask {
  const t = raw as Partial<ProviderTask> | null
  if (!t || typeof t.id !== 'string' || typeof t.progress !== 'string')
    throw new FineTuningProviderError('the provider described a task without its id or progress')
  return { ...t, id: t.id, progress: t.progress, fee: String(t.fee ?? '0') }
}

/** What a provider said went wrong, short: its `error` field when it has one. */
function errorText(body: Buffer): string {
  const text = body.toString('utf8', 0, Math.min(body.length, 2000))
  try {
    const json = JSON.parse(text) as { error?: unknown }
    if (typeof json.error === 'string') return json.error.slice(0, 500)
    if (json.error && typeof json.error === 'object' && 'message' in json.error)
      return String((json.error as { message: unknown }).message).slice(0, 500)
  } catch {}
  return text.slice(0, 500)
}
