import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { TrainingExample } from './examples.ts'
import type { Hyperparameters } from './hyperparameters.ts'
import type { TrainerEvent } from './trainer.ts'

/**
 * The dev trainer: a real, small model, honestly labelled. It is no neural network and no LoRA: a unigram softmax
 * word model — one logit per word, p(word) = softmax(logits) — over the base model's vocabulary plus the words of
 * the dataset's completions (the assistant turns), fit by mini-batch gradient descent on the cross-entropy of those
 * words, n_epochs passes over the examples in order, batch_size examples per step.
 *
 * It starts where the dev chat model stands (dev/chat-deterministic writes its vocabulary's words uniformly): the
 * base words at logit 0, the dataset's new words far below them. Training moves the mass to the dataset's words, so
 * a dev backend serving the adapter writes in the dataset's vocabulary, measurably.
 *
 * The adapter is a directory like a PEFT one: adapter_config.json (what it is, its base model, how it was trained)
 * and adapter_model.json (the vocabulary and its logits).
 */
export const DEV_ADAPTER_PEFT_TYPE = 'ZG_DEV_WORDLM'
export const DEV_TRAINER_NAME = 'zg-dev-trainer'

/** The step size a learning_rate_multiplier of 1 means, for this model (a LoRA's 2e-4 would barely move it). */
export const DEV_LEARNING_RATE = 25

/** Where a word the base model never writes starts: e^-4 ≈ 1/55 of a base word's weight. */
const NEW_WORD_LOGIT = -4

export type DevAdapterConfig = {
  peft_type: typeof DEV_ADAPTER_PEFT_TYPE
  base_model_name_or_path: string
  trainer: typeof DEV_TRAINER_NAME
  description: string
  hyperparameters: Hyperparameters
  learning_rate: number
  examples: number
  steps: number
  final_loss: number
}

export type DevAdapterModel = { vocabulary: string[]; logits: number[] }

export type DevAdapter = { config: DevAdapterConfig; model: DevAdapterModel }

/** The words of a text as the word model counts them: letters, marks, digits, inner apostrophes/hyphens; emoji. */
const WORD = /[\p{L}\p{M}\p{N}]+(?:['’-][\p{L}\p{M}\p{N}]+)*|\p{Extended_Pictographic}/gu

/** Dataset words are lowercased ("Ahoy" opening a sentence and "ahoy" inside one are one word). */
export function wordsOf(text: string): string[] {
  return Array.from(text.matchAll(WORD), ([w]) => w.toLocaleLowerCase('en'))
}

export type TrainDevAdapterOptions = {
  examples: TrainingExample[]
  baseModel: string
  /** The base model's words (the dev chat model's VOCABULARY). */
  baseVocabulary: readonly string[]
  hyperparameters: Hyperparameters
  onEvent?: (event: TrainerEvent) => void
  /** Awaited after each step (the dev trainer's --step-delay-ms, to make a run slow enough to watch or cancel). */
  afterStep?: () => Promise<void>
}

export async function trainDevAdapter(opts: TrainDevAdapterOptions): Promise<DevAdapter> {
  const { n_epochs, batch_size, learning_rate_multiplier } = opts.hyperparameters
  const vocabulary = [...new Set(opts.baseVocabulary)]
  const index = new Map(vocabulary.map((w, i) => [w, i]))
  const base = vocabulary.length
  // Each example as word ids; the vocabulary grows with the dataset's new words.
  const data = opts.examples.map(({ completion }) =>
    wordsOf(completion).map((w) => {
      let id = index.get(w)
      if (id === undefined) {
        id = vocabulary.push(w) - 1
        index.set(w, id)
      }
      return id
    }),
  )
  const totalWords = data.reduce((n, words) => n + words.length, 0)
  if (totalWords === 0) throw new Error('the dataset has no words in its completions to train on')

  const logits = vocabulary.map((_, i) => (i < base ? 0 : NEW_WORD_LOGIT))
  const rate = DEV_LEARNING_RATE * learning_rate_multiplier
  const stepsPerEpoch = Math.ceil(data.length / batch_size)
  const totalSteps = stepsPerEpoch * n_epochs
  opts.onEvent?.({
    event: 'log',
    message: `dev trainer (a unigram softmax word model, not a neural network): ${data.length} examples, ${totalWords} words, vocabulary ${base} base + ${vocabulary.length - base} from the dataset; ${totalSteps} steps at rate ${rate}`,
  })

  const counts = new Float64Array(vocabulary.length)
  for (const words of data) for (const id of words) counts[id]!++
  let loss = crossEntropy(logits, counts, totalWords)
  let step = 0
  for (let epoch = 0; epoch < n_epochs; epoch++) {
    for (let start = 0; start < data.length; start += batch_size) {
      // The gradient of the batch's mean cross-entropy with respect to the logits: p − (the batch's word frequencies).
      const batch = new Float64Array(vocabulary.length)
      let n = 0
      for (const words of data.slice(start, start + batch_size)) {
        for (const id of words) batch[id]!++
        n += words.length
      }
      if (n > 0) {
        const p = softmax(logits)
        for (let i = 0; i < logits.length; i++) logits[i]! -= rate * (p[i]! - batch[i]! / n)
      }
      step++
      loss = crossEntropy(logits, counts, totalWords)
      opts.onEvent?.({
        event: 'progress',
        step,
        total_steps: totalSteps,
        epoch: round(step / stepsPerEpoch, 4),
        loss: round(loss, 6),
      })
      await opts.afterStep?.()
    }
  }
  return {
    config: {
      peft_type: DEV_ADAPTER_PEFT_TYPE,
      base_model_name_or_path: opts.baseModel,
      trainer: DEV_TRAINER_NAME,
      description:
        "A dev adapter: a unigram softmax word model fit by gradient descent to the dataset's assistant turns. Not a neural network, not LoRA; served only by zg-gateway's dev backend.",
      hyperparameters: opts.hyperparameters,
      learning_rate: rate,
      examples: data.length,
      steps: totalSteps,
      final_loss: round(loss, 6),
    },
    model: { vocabulary, logits: logits.map((x) => round(x, 6)) },
  }
}

/** The mean cross-entropy (nats per word) of the whole dataset under the model. */
function crossEntropy(logits: number[], counts: Float64Array, total: number): number {
  const max = Math.max(...logits)
  let sum = 0
  for (const x of logits) sum += Math.exp(x - max)
  const logZ = max + Math.log(sum)
  let loss = 0
  for (let i = 0; i < logits.length; i++) if (counts[i]! > 0) loss += counts[i]! * (logZ - logits[i]!)
  return loss / total
}

export function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits)
  const e = logits.map((x) => Math.exp(x - max))
  const sum = e.reduce((a, b) => a + b, 0)
  return e.map((x) => x / sum)
}

const round = (x: number, digits: number) => Number(x.toFixed(digits))

export async function writeDevAdapter(dir: string, adapter: DevAdapter): Promise<void> {
  await writeFile(join(dir, 'adapter_config.json'), `${JSON.stringify(adapter.config, null, 2)}\n`)
  await writeFile(join(dir, 'adapter_model.json'), `${JSON.stringify(adapter.model)}\n`)
}

/** The directory does not hold a dev adapter (or a broken one). */
export class DevAdapterError extends Error {
  override name = 'DevAdapterError'
}

/** Reads and checks a dev adapter directory (adapter_config.json + adapter_model.json). */
export async function readDevAdapter(dir: string): Promise<DevAdapter> {
  const read = async (name: string): Promise<unknown> => {
    let text: string
    try {
      text = await readFile(join(dir, name), 'utf8')
    } catch (e) {
      throw new DevAdapterError(`${join(dir, name)} cannot be read: ${(e as Error).message}`)
    }
    try {
      return JSON.parse(text)
    } catch {
      throw new DevAdapterError(`${join(dir, name)} is not JSON`)
    }
  }
  const config = (await read('adapter_config.json')) as Partial<DevAdapterConfig> | null
  if (config?.peft_type !== DEV_ADAPTER_PEFT_TYPE) {
    throw new DevAdapterError(
      `${dir} holds a ${JSON.stringify(config?.peft_type ?? 'unknown')} adapter; the dev backend serves only ${DEV_ADAPTER_PEFT_TYPE} adapters (from the dev trainer)`,
    )
  }
  if (typeof config.base_model_name_or_path !== 'string') throw new DevAdapterError(`${dir}: no base model`)
  const model = (await read('adapter_model.json')) as Partial<DevAdapterModel> | null
  const { vocabulary, logits } = model ?? {}
  if (
    !Array.isArray(vocabulary) ||
    !Array.isArray(logits) ||
    vocabulary.length === 0 ||
    vocabulary.length !== logits.length ||
    !vocabulary.every((w) => typeof w === 'string' && w !== '') ||
    !logits.every((x) => typeof x === 'number' && Number.isFinite(x))
  ) {
    throw new DevAdapterError(`${dir}/adapter_model.json must hold a vocabulary and as many finite logits`)
  }
  return { config: config as DevAdapterConfig, model: { vocabulary, logits } }
}
