import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { bytesToHex } from 'viem'
import type { TeeSigner } from '../../attestation/tee-signer.ts'
import { packAdapter } from '../../fine-tuning/adapter-archive.ts'
import { encryptArtifact, modelRootHash } from '../../fine-tuning/artifact.ts'
import { parseTrainingParams } from '../../fine-tuning/hyperparameters.ts'
import { runTrainer, type TrainerEvent } from '../../fine-tuning/trainer.ts'
import { artifactPath } from './app.ts'
import type { FineTuningTask, TaskProgress } from './task.ts'
import type { FineTuningTaskStore } from './task-store.ts'

export type TrainingQueueOptions = {
  store: FineTuningTaskStore
  signer: TeeSigner
  dataDir: string
  /** The trainer command (src/fine-tuning/trainer.ts: its contract). */
  trainer: string
  /** Trainings at once (default 1: one GPU). */
  concurrency?: number
  /** The longest one training may run before its trainer is stopped and the task fails (default 24 h). */
  trainerTimeoutMs?: number
  /** A task's encrypted model is ready to deliver. */
  onArtifact(id: string): void
  log: (line: string) => void
}

/** The states a training passes through, which a restart takes back to the queue. */
const TRAINING: readonly TaskProgress[] = ['SettingUp', 'SetUp', 'Training', 'Trained']

/**
 * Runs queued tasks' trainings, oldest first, `concurrency` at a time: sets up the dataset and hyperparameters, runs
 * the trainer (its progress lines into the task's log), packs its output directory into one zip, encrypts it in 0G's
 * artifact layout signed by the TEE signer, and keeps the encrypted file and its key for delivery. A cancelled task's
 * trainer is stopped; a failed trainer fails its task (nothing is charged). A restart runs interrupted trainings again.
 */
export class TrainingQueue {
  readonly #o: Required<Omit<TrainingQueueOptions, 'onArtifact' | 'log'>> & TrainingQueueOptions
  readonly #running = new Map<string, { abort: AbortController; done: Promise<void> }>()
  #closed = false

  constructor(options: TrainingQueueOptions) {
    this.#o = {
      ...options,
      concurrency: options.concurrency ?? 1,
      trainerTimeoutMs: options.trainerTimeoutMs ?? 24 * 3_600_000,
    }
  }

  /** Takes interrupted trainings back to the queue, then starts what it can. */
  start(): void {
    const { store } = this.#o
    for (const task of store.tasksIn([...TRAINING, 'Delivering'])) {
      // A delivering task whose encrypted model was stored goes on to the chain; one that had not got that far trains again.
      if (task.progress === 'Delivering' && task.modelRootHash && task.artifactKey) continue
      if (store.update(task.id, { progress: 'Init' }, [...TRAINING, 'Delivering']))
        store.appendLog(task.id, `the node restarted during ${task.progress}: the task is queued to train again`)
    }
    this.wake()
  }

  /** Starts queued tasks while slots are free. */
  wake(): void {
    const { store, concurrency } = this.#o
    while (!this.#closed && this.#running.size < concurrency) {
      const next = store.tasksIn(['Init']).find((t) => !this.#running.has(t.id))
      if (!next) return
      if (!store.update(next.id, { progress: 'SettingUp' }, ['Init'])) continue
      const abort = new AbortController()
      const done = this.#train(next, abort.signal).finally(() => {
        this.#running.delete(next.id)
        this.wake()
      })
      this.#running.set(next.id, { abort, done })
    }
  }

  /** Stops the task's trainer, if it runs (the task was cancelled). */
  cancel(id: string): void {
    this.#running.get(id)?.abort.abort(new Error('cancelled'))
  }

  /** Stops every trainer; their tasks train again on the next start. */
  async close(): Promise<void> {
    this.#closed = true
    const running = [...this.#running.values()]
    for (const r of running) r.abort.abort(new Error('the node is stopping'))
    await Promise.all(running.map((r) => r.done))
  }

  async #train(task: FineTuningTask, signal: AbortSignal): Promise<void> {
    const { store, dataDir, log } = this.#o
    const workDir = join(dataDir, 'work', task.id)
    const outputDir = join(workDir, 'output')
    const advance = (to: TaskProgress, from: TaskProgress) => {
      if (this.#closed) return false
      return store.update(task.id, { progress: to }, [from])
    }
    try {
      store.appendLog(task.id, 'setting up')
      await rm(workDir, { recursive: true, force: true })
      await mkdir(outputDir, { recursive: true })
      const dataset = store.getDataset(task.user, task.datasetHash)
      if (!dataset) throw new Error(`the dataset ${task.datasetHash} is no longer on this node`)
      const hyperparameters = parseTrainingParams(task.trainingParams)
      if (!advance('SetUp', 'SettingUp') || !advance('Training', 'SetUp')) return
      store.appendLog(task.id, `training ${task.baseModel}: ${JSON.stringify(hyperparameters)}`)
      await runTrainer({
        command: this.#o.trainer,
        dataset: dataset.path,
        baseModel: task.baseModel,
        hyperparameters,
        outputDir,
        signal,
        timeoutMs: this.#o.trainerTimeoutMs,
        onEvent: (event) => store.appendLog(task.id, describe(event)),
      })
      if (!advance('Trained', 'Training')) return
      const zip = await packAdapter(outputDir)
      store.appendLog(task.id, `trained: the adapter is ${zip.length} bytes`)
      // From here on the task can no longer be cancelled: its model goes to the user, and the fee with it.
      if (!advance('Delivering', 'Trained')) return
      const { encrypted, key } = await encryptArtifact(zip, (digest) => this.#o.signer.signDigest(digest))
      const root = modelRootHash(encrypted)
      const path = artifactPath(dataDir, task.id)
      await mkdir(dirname(path), { recursive: true })
      await writeFile(`${path}.partial`, encrypted, { flush: true })
      await rename(`${path}.partial`, path)
      store.update(task.id, { modelRootHash: root, artifactKey: bytesToHex(key) })
      store.appendLog(task.id, `encrypted model ready: ${encrypted.length} bytes, root hash ${root}`)
      this.#o.onArtifact(task.id)
    } catch (err) {
      const now = store.getTask(task.id)
      if (this.#closed || !now || now.progress === 'Cancelled') return
      const message = (err as Error).message
      if (store.update(task.id, { progress: 'Failed', error: message }, [...TRAINING, 'Delivering'])) {
        store.appendLog(task.id, `failed: ${message} (nothing is charged)`)
        log(`fine-tuning: task ${task.id} failed: ${message}`)
      }
    } finally {
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined)
    }
  }
}

/** A trainer event as a log line. */
function describe(event: TrainerEvent): string {
  if (event.event === 'progress') {
    const loss = event.loss !== undefined ? ` loss ${event.loss}` : ''
    return `progress: step ${event.step}/${event.total_steps} epoch ${event.epoch}${loss}`
  }
  return event.message
}
