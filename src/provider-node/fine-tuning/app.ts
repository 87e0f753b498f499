import { createReadStream } from 'node:fs'
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { type Context, Hono } from 'hono'
import { type Address, getAddress, type Hex, isAddress, keccak256 } from 'viem'
import { z } from 'zod'
import type { TeeSigner } from '../../attestation/tee-signer.ts'
import type { ZgWalletClients } from '../../chain/clients.ts'
import { getFineTuningAccount, getFineTuningService } from '../../chain/fine-tuning/index.ts'
import { format0G } from '../../chain/units.ts'
import { parseTrainingParams, TrainingParamsError } from '../../fine-tuning/hyperparameters.ts'
import { BodyTooLargeError, readBody } from '../../http/early-body.ts'
import { corsHeaders } from '../cors.ts'
import type { BaseModel } from './base-models.ts'
import { readDataset } from './dataset-check.ts'
import { datasetTooLarge, receiveDatasetUpload } from './dataset-upload.ts'
import { FineTuningError } from './ft-error.ts'
import { CANCELLABLE_PROGRESS, taskJson } from './task.ts'
import { type FineTuningTaskStore, NonceReusedError } from './task-store.ts'
import {
  checkTimestamp,
  verifyCancelSignature,
  verifyDatasetSignature,
  verifyLoraSignature,
  verifyTaskSignature,
} from './user-signatures.ts'

export type FineTuningAppDeps = {
  store: FineTuningTaskStore
  /** The provider's wallet (its fine-tuning service and its users' sub-accounts are read with it). */
  clients: ZgWalletClients
  signer: TeeSigner
  models: readonly BaseModel[]
  /** Where datasets (datasets/), artifacts (artifacts/) and uploads in progress (uploads/) live. */
  dataDir: string
  /** Largest dataset upload, bytes. */
  maxDatasetBytes: number
  /** A new task is queued (the worker starts it when a slot is free). */
  onTaskCreated(id: string): void
  /** The user cancelled a task: its trainer, if running, is stopped. */
  onTaskCancelled(id: string): void
  log: (line: string) => void
}

/** Dataset uploads read at once (each up to the dataset limit, on disk). */
const MAX_UPLOADS_AT_ONCE = 4
/** Datasets kept per user: an older one goes when a newer one comes, unless an unfinished task needs it. */
export const MAX_DATASETS_PER_USER = 20
/** JSON bodies of the task routes are small: trainingParams is a few hundred bytes. */
const JSON_LIMIT = 64 * 1024
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const HEX32 = /^0x[0-9a-fA-F]{64}$/
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/

const taskBody = z.object({
  userAddress: z.string(),
  datasetHash: z.string().regex(HEX32, 'datasetHash is 32 bytes of 0x-hex'),
  trainingParams: z.string().max(16 * 1024),
  preTrainedModelHash: z.string().regex(HEX32, 'preTrainedModelHash is 32 bytes of 0x-hex'),
  fee: z.string().optional(),
  nonce: z.string().regex(/^\d{1,77}$/, 'nonce is a decimal string'),
  signature: z.string().regex(SIGNATURE, 'signature is 65 bytes of 0x-hex'),
  wait: z.boolean().optional(),
})
const signedBody = z.object({
  signature: z.string().regex(SIGNATURE, 'signature is 65 bytes of 0x-hex'),
  timestamp: z.union([z.number().int(), z.string().regex(/^\d{1,12}$/)]).optional(),
})

/**
 * The fine-tuning provider's HTTP API: 0G's broker endpoints as the official SDK calls them (0g-protocol.md §6; SDK
 * 0.9.0 `fine-tuning/provider/provider.js`). Errors are `{error: "<message>"}`, which the SDK reads.
 */
export function createFineTuningApp(deps: FineTuningAppDeps): Hono {
  const app = new Hono()
  const provider = deps.clients.walletClient.account.address
  const { store } = deps
  app.use('*', corsHeaders())

  app.get('/v1/quote', async (c) => {
    const report = await deps.signer.attestation()
    // The SDK's acknowledgeProviderSigner takes `report_data` as the signing address' source and refuses a quote
    // without one; the dev signer's report has no hardware report_data, so it names its address (and says insecure).
    return c.json('report_data' in report ? report : { ...report, report_data: deps.signer.address })
  })

  // Uploads are read before their signature (it comes after the file): a few at a time, each within the limit.
  let uploading = 0
  app.post('/v1/user/:address/dataset', async (c) => {
    const user = userOf(c)
    const declared = Number(c.req.header('content-length'))
    // A declared length far past the limit is refused unread (the form's own headers are a few hundred bytes).
    if (declared > deps.maxDatasetBytes + 64 * 1024) throw datasetTooLarge(deps.maxDatasetBytes)
    if (uploading >= MAX_UPLOADS_AT_ONCE)
      throw new FineTuningError(503, 'busy', 'the node is receiving other datasets: try again in a moment')
    uploading++
    const upload = await receiveDatasetUpload(c.req.raw.body, {
      contentType: c.req.header('content-type'),
      limit: deps.maxDatasetBytes,
      tmpDir: join(deps.dataDir, 'uploads'),
    }).finally(() => {
      uploading--
    })
    try {
      const timestamp = upload.fields.get('timestamp')
      const signature = upload.fields.get('signature')
      if (!timestamp || !signature || !SIGNATURE.test(signature))
        throw new FineTuningError(400, 'missing_signature', 'the upload needs `signature` and `timestamp` fields')
      checkTimestamp(timestamp)
      await verifyDatasetSignature(c.req.param('address'), user, timestamp, signature as Hex)
      const bytes = await readFile(upload.file)
      const dataset = readDataset(bytes)
      const hash = keccak256(bytes)
      const dir = join(deps.dataDir, 'datasets', user.toLowerCase())
      await mkdir(dir, { recursive: true })
      const path = join(dir, `${hash}.jsonl`)
      await rename(upload.file, path)
      const stored = store.addDataset({ user, hash, path, size: bytes.length, ...dataset })
      await forgetOldDatasets(user)
      deps.log(`fine-tuning: dataset ${hash} from ${user}: ${stored.examples} examples, ${stored.tokens} tokens`)
      return c.json({
        datasetHash: hash,
        size: stored.size,
        examples: stored.examples,
        tokens: stored.tokens,
        message: 'dataset uploaded',
      })
    } finally {
      await rm(upload.file, { force: true })
    }
  })

  // One creation at a time per user: the sub-account check and the insert must see each other's tasks.
  const creating = new Map<string, Promise<unknown>>()
  app.post('/v1/user/:address/task', async (c) => {
    const user = userOf(c)
    const body = parse(taskBody, await jsonBody(c))
    if (!isAddress(body.userAddress, { strict: false }) || getAddress(body.userAddress) !== user)
      throw new FineTuningError(400, 'user_mismatch', 'userAddress differs from the address in the path')
    const nonce = BigInt(body.nonce)
    const { publicKey } = await verifyTaskSignature(user, nonce, body.datasetHash, body.signature as Hex)
    const model = deps.models.find((m) => m.hash.toLowerCase() === body.preTrainedModelHash.toLowerCase())
    if (!model) {
      throw new FineTuningError(
        400,
        'unknown_model',
        `this provider does not fine-tune the model ${body.preTrainedModelHash}; it offers ${deps.models.map((m) => `${m.name} (${m.hash})`).join(', ')}`,
      )
    }
    const dataset = store.getDataset(user, body.datasetHash as Hex)
    if (!dataset) {
      throw new FineTuningError(
        404,
        'dataset_not_found',
        `no dataset ${body.datasetHash} was uploaded by ${user} to this provider: upload it first (POST /v1/user/${user}/dataset)`,
      )
    }
    const hyperparameters = trainingParamsOf(body.trainingParams)
    const previous = creating.get(user) ?? Promise.resolve()
    const turn = previous
      .catch(() => undefined)
      .then(async () => {
        const service = await getFineTuningService(deps.clients, provider)
        if (!service)
          throw new FineTuningError(503, 'not_registered', 'this provider has no fine-tuning service on chain')
        // settleFees takes the registered, owner-acknowledged signer's signature only: a model this node delivered
        // under another signer could never be paid for, nor its key handed over.
        if (service.teeSignerAddress !== deps.signer.address || !service.teeSignerAcknowledged)
          throw new FineTuningError(
            503,
            'signer_not_registered',
            service.teeSignerAddress !== deps.signer.address
              ? `this node's TEE signer ${deps.signer.address} is not the registered one (${service.teeSignerAddress})`
              : "this provider's TEE signer is not acknowledged by the contract owner yet",
          )
        const epochs = hyperparameters.n_epochs
        const fee = BigInt(dataset.tokens) * service.pricePerToken * BigInt(epochs)
        const account = await getFineTuningAccount(deps.clients, user, provider)
        if (!account)
          throw new FineTuningError(
            402,
            'no_sub_account',
            `${user} has no fine-tuning sub-account with this provider: transfer funds to ${provider} for "fine-tuning" first (the task costs ${og(fee)})`,
          )
        if (!account.acknowledged)
          throw new FineTuningError(
            402,
            'signer_not_acknowledged',
            `${user} has not acknowledged this provider's TEE signer (acknowledgeTEESigner)`,
          )
        const last = account.deliverables.at(-1)
        if (last?.settled && !last.acknowledged)
          throw new FineTuningError(
            409,
            'sub_account_blocked',
            `${user}'s last model from this provider (task ${last.id}) was settled without acknowledgement: the contract takes no new model for this sub-account until the user's ledger is emptied (which deletes it) and funded again`,
          )
        const held = store.heldFees(user)
        const available = account.balance - account.pendingRefund
        if (available < fee + held) {
          throw new FineTuningError(
            402,
            'insufficient_balance',
            `insufficient balance in the fine-tuning sub-account: the task costs ${og(fee)} (${dataset.tokens} tokens × ${service.pricePerToken} neuron × ${epochs} epochs)${held ? ` on top of ${og(held)} held for unfinished tasks` : ''}, and ${og(available > 0n ? available : 0n)} is available (balance minus pending refunds)`,
          )
        }
        const pending = store.pendingCount()
        if (pending > 0 && !body.wait)
          throw new FineTuningError(
            409,
            'queue_not_empty',
            `${pending} task(s) wait in this provider's queue: create the task with wait: true to queue behind them`,
          )
        try {
          return store.insertTask({
            id: crypto.randomUUID(),
            user,
            preTrainedModelHash: model.hash,
            baseModel: model.name,
            datasetHash: dataset.hash,
            trainingParams: body.trainingParams,
            fee,
            tokens: dataset.tokens,
            epochs,
            nonce,
            signature: body.signature as Hex,
            userPublicKey: publicKey,
          })
        } catch (err) {
          if (err instanceof NonceReusedError) throw new FineTuningError(409, 'nonce_reused', err.message)
          throw err
        }
      })
    creating.set(user, turn)
    const task = await turn.finally(() => {
      if (creating.get(user) === turn) creating.delete(user)
    })
    store.appendLog(
      task.id,
      `created: base model ${task.baseModel}, ${task.tokens} tokens × ${task.epochs} epochs, fee ${og(task.fee)}`,
    )
    deps.onTaskCreated(task.id)
    return c.json(taskJson(task))
  })

  app.get('/v1/user/:address/task', (c) => {
    const user = userOf(c)
    const latest = c.req.query('latest') === 'true'
    return c.json(store.tasksOf(user, latest ? 1 : 1000).map(taskJson))
  })

  app.get('/v1/user/:address/task/:id', (c) => c.json(taskJson(taskOf(c))))

  app.get('/v1/user/:address/task/:id/log', (c) => c.text(store.log(taskOf(c).id)))

  app.post('/v1/user/:address/task/:id/cancel', async (c) => {
    const task = taskOf(c)
    const body = parse(signedBody, await jsonBody(c))
    await verifyCancelSignature(task.id, body.signature as Hex, task.user)
    if (!CANCELLABLE_PROGRESS.has(task.progress))
      throw new FineTuningError(
        409,
        'not_cancellable',
        `the task is ${task.progress}: only a task not yet delivered can be cancelled`,
      )
    if (!store.update(task.id, { progress: 'Cancelled' }, [...CANCELLABLE_PROGRESS]))
      throw new FineTuningError(409, 'not_cancellable', 'the task is being delivered and can no longer be cancelled')
    store.appendLog(task.id, 'cancelled by the user: nothing is charged')
    deps.onTaskCancelled(task.id)
    return c.json(taskJson(store.getTask(task.id) ?? task))
  })

  app.post('/v1/user/:address/task/:id/lora', async (c) => {
    const task = taskOf(c)
    const body = parse(signedBody, await jsonBody(c))
    if (body.timestamp === undefined) throw new FineTuningError(400, 'missing_timestamp', 'timestamp is required')
    checkTimestamp(String(body.timestamp))
    await verifyLoraSignature(task.id, String(body.timestamp), body.signature as Hex, task.user)
    if (!task.modelRootHash || !task.deliveredAt)
      throw new FineTuningError(409, 'not_delivered', `the task is ${task.progress}: its model is not delivered yet`)
    const path = artifactPath(deps.dataDir, task.id)
    const size = (await stat(path).catch(() => undefined))?.size
    if (size === undefined) throw new FineTuningError(410, 'artifact_gone', 'the encrypted model is no longer kept')
    return new Response(Readable.toWeb(createReadStream(path)) as ReadableStream, {
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(size),
        'content-disposition': `attachment; filename="lora_model_${task.id}.zip"`,
      },
    })
  })

  app.get('/v1/task/pending', (c) => c.text(String(store.pendingCount())))

  app.get('/v1/model', (c) => c.json(deps.models))
  // Model names may hold slashes (dev/chat-deterministic, Qwen/Qwen2.5-0.5B-Instruct), and the SDK puts them in the
  // path as they are: the whole rest of the path is the name.
  app.get('/v1/model/*', (c) => {
    const raw = c.req.path.slice('/v1/model/'.length)
    let name: string
    try {
      name = decodeURIComponent(raw)
    } catch {
      throw new FineTuningError(400, 'invalid_model_name', 'the model name is not valid percent-encoding')
    }
    const model = deps.models.find((m) => m.name === name)
    if (!model)
      throw new FineTuningError(
        404,
        'model_not_found',
        `this provider does not fine-tune ${name}; it offers ${deps.models.map((m) => m.name).join(', ')}`,
      )
    return c.json(model)
  })

  app.get('/health', (c) => c.json({ status: 'ok', signer: deps.signer.address, tee: deps.signer.kind }))

  app.notFound((c) => c.json(new FineTuningError(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`), 404))
  app.onError((err, c) => {
    if (err instanceof FineTuningError) return c.json(err.toJSON(), err.status as 400)
    if (err instanceof BodyTooLargeError)
      return c.json(new FineTuningError(413, 'body_too_large', err.message).toJSON(), 413)
    deps.log(`fine-tuning node error on ${c.req.method} ${c.req.path}: ${(err as Error).stack ?? err}`)
    return c.json(new FineTuningError(500, 'internal_error', 'internal error in the fine-tuning node').toJSON(), 500)
  })

  /** Keeps a user's newest datasets (and any an unfinished task needs): the disk a user can fill is bounded. */
  async function forgetOldDatasets(user: Address) {
    for (const old of store.datasetsOf(user).slice(MAX_DATASETS_PER_USER)) {
      if (store.datasetInUse(user, old.hash)) continue
      store.removeDataset(user, old.hash)
      await rm(old.path, { force: true })
    }
  }

  /** The path's user address, checksummed; a 400 for anything else. */
  function userOf(c: Context): Address {
    const address = c.req.param('address') ?? ''
    if (!isAddress(address, { strict: false }))
      throw new FineTuningError(400, 'invalid_address', `not an address: ${address.slice(0, 64)}`)
    return getAddress(address)
  }

  /** The path's task, which must be the path user's. */
  function taskOf(c: Context) {
    const user = userOf(c)
    const id = (c.req.param('id') ?? '').toLowerCase()
    if (!UUID.test(id)) throw new FineTuningError(400, 'invalid_task_id', 'a task id is a uuid')
    const task = store.getTask(id)
    if (!task || task.user !== user) throw new FineTuningError(404, 'task_not_found', `no task ${id} of ${user}`)
    return task
  }

  return app
}

/** Where a task's encrypted model is kept (task ids are uuids, checked before they name a file). */
export function artifactPath(dataDir: string, taskId: string): string {
  if (!UUID.test(taskId)) throw new Error(`not a task id: ${taskId}`)
  return join(dataDir, 'artifacts', `${taskId}.enc`)
}

/** The task's hyperparameters, or a 400 saying what is wrong with its trainingParams. */
function trainingParamsOf(text: string) {
  try {
    return parseTrainingParams(text)
  } catch (err) {
    if (err instanceof TrainingParamsError) throw new FineTuningError(400, 'invalid_training_params', err.message)
    throw err
  }
}

/** Neuron as "1.5 0G", for messages. */
const og = (neuron: bigint) => `${format0G(neuron)} 0G`

async function jsonBody(c: Context): Promise<unknown> {
  const bytes = await readBody(c, JSON_LIMIT)
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new FineTuningError(400, 'invalid_json', 'the body is not JSON')
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value)
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new FineTuningError(400, 'invalid_request', `${issue?.path.join('.') || 'body'}: ${issue?.message}`)
  }
  return result.data
}
