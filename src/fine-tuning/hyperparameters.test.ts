import { describe, expect, it } from 'vitest'
import {
  DEFAULT_HYPERPARAMETERS,
  hyperparametersInputSchema,
  parseTrainingParams,
  resolveHyperparameters,
  TrainingParamsError,
  trainingParamsOf,
} from './hyperparameters.ts'

describe('hyperparameters', () => {
  it('"auto" and absent fields take the documented defaults', () => {
    expect(resolveHyperparameters()).toEqual({ n_epochs: 3, learning_rate_multiplier: 1, batch_size: 4 })
    expect(resolveHyperparameters({ n_epochs: 'auto', batch_size: 8 })).toEqual({
      ...DEFAULT_HYPERPARAMETERS,
      batch_size: 8,
    })
  })

  it("accepts OpenAI's ranges and refuses what is outside them", () => {
    const ok = { n_epochs: 50, learning_rate_multiplier: 0.05, batch_size: 256 }
    expect(hyperparametersInputSchema.parse(ok)).toEqual(ok)
    for (const bad of [
      { n_epochs: 0 },
      { n_epochs: 51 },
      { n_epochs: 1.5 },
      { learning_rate_multiplier: 0 },
      { batch_size: 257 },
      { batch_size: 'big' },
      { epochs: 3 },
    ]) {
      expect(hyperparametersInputSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false)
    }
  })

  it('round-trips through 0G trainingParams (Hugging Face TrainingArguments names)', () => {
    const h = { n_epochs: 2, learning_rate_multiplier: 0.1, batch_size: 16 }
    expect(JSON.parse(trainingParamsOf(h))).toEqual({
      num_train_epochs: 2,
      learning_rate: 0.1 * 2e-4,
      per_device_train_batch_size: 16,
    })
    expect(parseTrainingParams(trainingParamsOf(h))).toEqual(h)
    expect(parseTrainingParams(trainingParamsOf(DEFAULT_HYPERPARAMETERS))).toEqual(DEFAULT_HYPERPARAMETERS)
  })

  it("reads a 0G user's config: extra arguments ignored, missing ones defaulted", () => {
    const sdkConfig =
      '{"neftune_noise_alpha":5,"num_train_epochs":1,"per_device_train_batch_size":2,"learning_rate":0.0002,"max_steps":3}'
    expect(parseTrainingParams(sdkConfig)).toEqual({ n_epochs: 1, learning_rate_multiplier: 1, batch_size: 2 })
    expect(parseTrainingParams('{}')).toEqual(DEFAULT_HYPERPARAMETERS)
  })

  it('refuses trainingParams that are not a sane JSON object', () => {
    for (const [text, message] of [
      ['not json', 'not JSON'],
      ['[1]', 'trainingParams'],
      ['{"num_train_epochs":0}', 'num_train_epochs'],
      ['{"num_train_epochs":"3"}', 'num_train_epochs'],
      ['{"learning_rate":-1}', 'learning_rate'],
      ['{"per_device_train_batch_size":1000}', 'per_device_train_batch_size'],
    ]) {
      expect(() => parseTrainingParams(text!), text).toThrow(TrainingParamsError)
      expect(() => parseTrainingParams(text!), text).toThrow(message)
    }
  })
})
