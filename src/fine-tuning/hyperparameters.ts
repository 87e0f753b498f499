import { z } from 'zod'

/**
 * The hyperparameters of a supervised fine-tuning job, in OpenAI's terms, resolved (no "auto" left). They travel to
 * a 0G provider as the task's `trainingParams` JSON text, in Hugging Face TrainingArguments names (what 0G's
 * example `config.json` and LoRA trainers use): num_train_epochs, learning_rate, per_device_train_batch_size.
 */
export type Hyperparameters = { n_epochs: number; learning_rate_multiplier: number; batch_size: number }

/**
 * What "auto" resolves to. OpenAI sizes its automatic values from the dataset; ours are fixed so that a job's fee
 * (tokens × price × epochs) is known before it starts: 3 epochs (OpenAI's long-standing default), a multiplier of
 * 1 on the base learning rate, 4 examples per batch.
 */
export const DEFAULT_HYPERPARAMETERS: Hyperparameters = { n_epochs: 3, learning_rate_multiplier: 1, batch_size: 4 }

/** The learning rate a multiplier of 1 means: 2e-4, the usual LoRA rate (PEFT's examples, 0G's sample config). */
export const BASE_LEARNING_RATE = 2e-4

const auto = z.literal('auto')

/** OpenAI's `hyperparameters` object (FineTuneSupervisedHyperparameters), every field optional or "auto". */
export const hyperparametersInputSchema = z
  .object({
    n_epochs: z.union([auto, z.number().int().min(1).max(50)]).optional(),
    learning_rate_multiplier: z.union([auto, z.number().positive().max(100)]).optional(),
    batch_size: z.union([auto, z.number().int().min(1).max(256)]).optional(),
  })
  .strict()

export type HyperparametersInput = z.infer<typeof hyperparametersInputSchema>

/** Fills "auto" and absent fields with DEFAULT_HYPERPARAMETERS. */
export function resolveHyperparameters(input: HyperparametersInput = {}): Hyperparameters {
  const pick = <K extends keyof Hyperparameters>(key: K): Hyperparameters[K] => {
    const value = input[key]
    return value === undefined || value === 'auto' ? DEFAULT_HYPERPARAMETERS[key] : (value as Hyperparameters[K])
  }
  return {
    n_epochs: pick('n_epochs'),
    learning_rate_multiplier: pick('learning_rate_multiplier'),
    batch_size: pick('batch_size'),
  }
}

/** The 0G task's `trainingParams` text for these hyperparameters. */
export function trainingParamsOf(h: Hyperparameters): string {
  return JSON.stringify({
    num_train_epochs: h.n_epochs,
    learning_rate: h.learning_rate_multiplier * BASE_LEARNING_RATE,
    per_device_train_batch_size: h.batch_size,
  })
}

/** A task's `trainingParams` is not a JSON object of sane training arguments. */
export class TrainingParamsError extends Error {
  override name = 'TrainingParamsError'
}

const trainingParamsSchema = z
  .object({
    num_train_epochs: z.number().int().min(1).max(50).optional(),
    learning_rate: z
      .number()
      .positive()
      .max(100 * BASE_LEARNING_RATE)
      .optional(),
    per_device_train_batch_size: z.number().int().min(1).max(256).optional(),
  })
  // 0G's configs carry other TrainingArguments too (max_steps, neftune_noise_alpha, …): kept by the trainer that
  // reads them, ignored here.
  .passthrough()

/**
 * Reads a task's `trainingParams` (JSON text, as the SDK's createTask sends it from the user's config file) back
 * into Hyperparameters; absent fields take the defaults. The provider bills with `n_epochs`.
 */
export function parseTrainingParams(text: string): Hyperparameters {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new TrainingParamsError('trainingParams is not JSON')
  }
  const parsed = trainingParamsSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const where = issue.path.length ? `${issue.path.join('.')}: ` : ''
    throw new TrainingParamsError(`trainingParams ${where}${issue.message}`)
  }
  const p = parsed.data
  return {
    n_epochs: p.num_train_epochs ?? DEFAULT_HYPERPARAMETERS.n_epochs,
    learning_rate_multiplier:
      p.learning_rate === undefined
        ? DEFAULT_HYPERPARAMETERS.learning_rate_multiplier
        : roundMultiplier(p.learning_rate / BASE_LEARNING_RATE),
    batch_size: p.per_device_train_batch_size ?? DEFAULT_HYPERPARAMETERS.batch_size,
  }
}

/** 0.1 × 2e-4 / 2e-4 is 0.09999999999999999 in floating point: twelve significant digits are plenty. */
function roundMultiplier(x: number): number {
  return Number(x.toPrecision(12))
}
