import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { VOCABULARY } from '../devnet/backends/prose.ts'
import { DevAdapterError, readDevAdapter, softmax, trainDevAdapter, wordsOf, writeDevAdapter } from './dev-trainer.ts'
import { readTrainingExamples } from './examples.ts'
import { DEFAULT_HYPERPARAMETERS } from './hyperparameters.ts'
import { NAUTICAL_WORDS, nauticalChatJsonl } from './test-support.ts'
import type { TrainerEvent } from './trainer.ts'

const dir = await mkdtemp(join(tmpdir(), 'zg-dev-trainer-'))
afterAll(() => rm(dir, { recursive: true, force: true }))

const examples = readTrainingExamples(nauticalChatJsonl(12))
const nautical = new Set<string>(NAUTICAL_WORDS)

function massOn(model: { vocabulary: string[]; logits: number[] }, words: Set<string>): number {
  const p = softmax(model.logits)
  return model.vocabulary.reduce((sum, w, i) => sum + (words.has(w) ? p[i]! : 0), 0)
}

describe('dev trainer (a unigram softmax word model)', () => {
  it("fits the assistant turns' words by gradient descent: the loss falls at every step", async () => {
    const events: TrainerEvent[] = []
    const adapter = await trainDevAdapter({
      examples,
      baseModel: 'dev/chat-deterministic',
      baseVocabulary: VOCABULARY,
      hyperparameters: DEFAULT_HYPERPARAMETERS,
      onEvent: (e) => events.push(e),
    })
    const progress = events.filter((e) => e.event === 'progress')
    // 12 examples, 4 per batch, 3 epochs.
    expect(progress.map((e) => e.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(progress.every((e) => e.total_steps === 9)).toBe(true)
    expect(progress.at(-1)!.epoch).toBe(3)
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.loss).toBeLessThan(progress[i - 1]!.loss)
    expect(events[0]).toMatchObject({ event: 'log', message: expect.stringContaining('not a neural network') })

    expect(adapter.config).toMatchObject({
      peft_type: 'ZG_DEV_WORDLM',
      base_model_name_or_path: 'dev/chat-deterministic',
      trainer: 'zg-dev-trainer',
      examples: 12,
      steps: 9,
      final_loss: progress.at(-1)!.loss,
    })
    expect(adapter.model.vocabulary.slice(0, VOCABULARY.length)).toEqual([...VOCABULARY])
    expect(new Set(adapter.model.vocabulary.slice(VOCABULARY.length))).toEqual(nautical)
    // Untrained, the nautical words hold e^-4 of a base word's weight each; trained, most of the mass.
    expect(massOn(adapter.model, nautical)).toBeGreaterThan(0.8)
  })

  it('more epochs or a larger learning rate fit further; a smaller rate less', async () => {
    const train = (h: Partial<typeof DEFAULT_HYPERPARAMETERS>) =>
      trainDevAdapter({
        examples,
        baseModel: 'b',
        baseVocabulary: VOCABULARY,
        hyperparameters: { ...DEFAULT_HYPERPARAMETERS, ...h },
      })
    const base = massOn((await train({})).model, nautical)
    expect(massOn((await train({ n_epochs: 6 })).model, nautical)).toBeGreaterThan(base)
    expect(massOn((await train({ learning_rate_multiplier: 2 })).model, nautical)).toBeGreaterThan(base)
    expect(massOn((await train({ learning_rate_multiplier: 0.1 })).model, nautical)).toBeLessThan(0.2)
  })

  it('writes and reads back the adapter directory; refuses a foreign or broken one', async () => {
    const adapter = await trainDevAdapter({
      examples,
      baseModel: 'dev/chat-deterministic',
      baseVocabulary: VOCABULARY,
      hyperparameters: DEFAULT_HYPERPARAMETERS,
    })
    const out = join(dir, 'adapter')
    await rm(out, { recursive: true, force: true })
    await import('node:fs/promises').then((fs) => fs.mkdir(out))
    await writeDevAdapter(out, adapter)
    expect(await readDevAdapter(out)).toEqual(adapter)

    await writeFile(join(out, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8 }))
    await expect(readDevAdapter(out)).rejects.toThrow(/holds a "LORA" adapter/)
    await writeFile(join(out, 'adapter_config.json'), JSON.stringify(adapter.config))
    await writeFile(join(out, 'adapter_model.json'), JSON.stringify({ vocabulary: ['a'], logits: [] }))
    await expect(readDevAdapter(out)).rejects.toBeInstanceOf(DevAdapterError)
    await expect(readDevAdapter(join(dir, 'missing'))).rejects.toBeInstanceOf(DevAdapterError)
  })

  it('words: lowercased, apostrophes and hyphens inside words, emoji as words, punctuation dropped', () => {
    expect(wordsOf("Ahoy, captain! The sea-dog's 🦊 sails at 10.")).toEqual([
      'ahoy',
      'captain',
      'the',
      "sea-dog's",
      '🦊',
      'sails',
      'at',
      '10',
    ])
  })
})
