import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { TeeSigner } from '../../attestation/tee-signer.ts'
import type { ZgWalletClients } from '../../chain/clients.ts'
import { listenApp } from '../../http/listen.ts'
import { createFineTuningApp } from './app.ts'
import { baseModels } from './base-models.ts'
import { DeliveryFollower } from './delivery.ts'
import { FineTuningTaskStore } from './task-store.ts'
import { TrainingQueue } from './training-queue.ts'

export type FineTuningNodeOptions = {
  /** The provider's wallet on the network its fine-tuning service is registered on. */
  clients: ZgWalletClients
  /** Signs the encrypted models and the settlements; on chain the service's teeSignerAddress. */
  signer: TeeSigner
  /** Where the task database, datasets and encrypted models live. */
  dataDir: string
  /** Base model names the node fine-tunes (`--model`). */
  models: readonly string[]
  /** The trainer command (src/fine-tuning/trainer.ts describes what it is given and prints). */
  trainer: string
  /** What /v1/model says trains the models (default "external trainer"; the dev trainer names itself). */
  trainerLabel?: string
  /** Trainings at once (default 1). */
  concurrency?: number
  /** The longest one training may run (default 24 h). */
  trainerTimeoutMs?: number
  /** How long a user has to acknowledge a deliverable before it is settled without the key (default 48 h). */
  ackTimeoutMs?: number
  /** How often the chain is read for deliveries and acknowledgements (default 5 s). */
  pollIntervalMs?: number
  /** Largest dataset upload, bytes (default 100 MB, 0G's default). */
  maxDatasetBytes?: number
  host?: string
  /** 0 picks a free port. */
  port?: number
  log?: (line: string) => void
}

export type FineTuningNode = {
  url: string
  port: number
  store: FineTuningTaskStore
  /** Reads the chain now: delivers what is ready, settles what is acknowledged or past its window. */
  followChain(): Promise<void>
  close(): Promise<void>
}

export const DEFAULT_MAX_DATASET_BYTES = 100 * 1024 * 1024

/**
 * Starts a fine-tuning provider node: 0G's fine-tuning broker API (src/provider-node/fine-tuning/app.ts), a training
 * queue running the trainer, and the follower that takes encrypted models to the chain and settles them. Tasks
 * interrupted by a stop resume on the next start.
 */
export async function startFineTuningNode(options: FineTuningNodeOptions): Promise<FineTuningNode> {
  if (!options.models.length) throw new Error('a fine-tuning node needs at least one base model')
  const log = options.log ?? ((line: string) => console.error(line))
  const store = new FineTuningTaskStore(join(options.dataDir, 'fine-tuning.sqlite'))
  const follower = new DeliveryFollower({
    store,
    clients: options.clients,
    signer: options.signer,
    ackTimeoutMs: options.ackTimeoutMs,
    pollIntervalMs: options.pollIntervalMs,
    log,
  })
  const queue = new TrainingQueue({
    store,
    signer: options.signer,
    dataDir: options.dataDir,
    trainer: options.trainer,
    concurrency: options.concurrency,
    trainerTimeoutMs: options.trainerTimeoutMs,
    onArtifact: () => void follower.wake(),
    log,
  })
  const app = createFineTuningApp({
    store,
    clients: options.clients,
    signer: options.signer,
    models: baseModels(options.models, options.trainerLabel ?? 'external trainer'),
    dataDir: options.dataDir,
    maxDatasetBytes: options.maxDatasetBytes ?? DEFAULT_MAX_DATASET_BYTES,
    onTaskCreated: () => queue.wake(),
    onTaskCancelled: (id) => queue.cancel(id),
    log,
  })
  let server: Awaited<ReturnType<typeof listenApp>>
  try {
    server = await listenApp(app.fetch, {
      hostname: options.host ?? '127.0.0.1',
      port: options.port ?? 0,
      what: 'the fine-tuning node',
    })
  } catch (err) {
    store.close()
    throw err
  }
  queue.start()
  follower.start()
  const { port, address } = server.address() as AddressInfo
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    port,
    store,
    followChain: () => follower.wake(),
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
      })
      await queue.close()
      await follower.close()
      store.close()
    },
  }
}
