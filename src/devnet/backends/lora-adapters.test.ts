import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { wordsOf } from '../../fine-tuning/dev-trainer.ts'
import { DEFAULT_HYPERPARAMETERS } from '../../fine-tuning/hyperparameters.ts'
import { NAUTICAL_WORDS, nauticalChatJsonl } from '../../fine-tuning/test-support.ts'
import { DEV_TRAINER_COMMAND, runTrainer } from '../../fine-tuning/trainer.ts'
import { DEV_CHAT_MODEL, type DevBackend, startDevBackend } from './index.ts'
import { type ChatCompletion, type Completion, type ErrorBody, json, postJson, readChatStream } from './test-support.ts'

const dir = await mkdtemp(join(tmpdir(), 'zg-lora-'))
const adapterDir = join(dir, 'adapter')
let backend: DevBackend

beforeAll(async () => {
  await writeFile(join(dir, 'train.jsonl'), nauticalChatJsonl(12))
  // Trained by the dev trainer as a provider would run it: the trainer contract, a separate process.
  await runTrainer({
    command: DEV_TRAINER_COMMAND,
    dataset: join(dir, 'train.jsonl'),
    baseModel: DEV_CHAT_MODEL,
    hyperparameters: DEFAULT_HYPERPARAMETERS,
    outputDir: adapterDir,
    onEvent: () => {},
  })
  backend = await startDevBackend()
})
afterAll(async () => {
  await backend.close()
  await rm(dir, { recursive: true, force: true })
})

const nautical = new Set<string>(NAUTICAL_WORDS)
/** The share of an answer's words that are nautical. */
const nauticalShare = (text: string) => {
  const words = wordsOf(text)
  return words.filter((w) => nautical.has(w)).length / words.length
}
const load = (lora_name: string, lora_path: string) =>
  postJson(`${backend.url}/v1/load_lora_adapter`, { lora_name, lora_path })
const unload = (lora_name: string) => postJson(`${backend.url}/v1/unload_lora_adapter`, { lora_name })
const chat = (model: string, content: string, extra: Record<string, unknown> = {}) =>
  postJson(`${backend.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content }], ...extra })

describe("dev backend: vLLM's runtime LoRA API, serving the dev trainer's adapters", () => {
  it('loads an adapter (plain-text success) and lists it like vLLM', async () => {
    const response = await load('sailor', adapterDir)
    expect(response.status).toBe(200)
    expect(await response.text()).toBe("Success: LoRA adapter 'sailor' added successfully.")
    const models = await json<{ data: Array<Record<string, unknown>> }>(await fetch(`${backend.url}/v1/models`))
    expect(models.data.at(-1)).toEqual({
      id: 'sailor',
      object: 'model',
      created: expect.any(Number),
      owned_by: 'zg-gateway-dev',
      root: adapterDir,
      parent: DEV_CHAT_MODEL,
      max_model_len: 8192,
    })
  })

  it("answers in the dataset's vocabulary, where the base model does not, deterministically", async () => {
    const prompts = ['Where are we going?', 'Tell me a story.', 'What is the weather like?', 'Hello!']
    let tuned = 0
    let base = 0
    for (const prompt of prompts) {
      const answer = await json<ChatCompletion>(await chat('sailor', prompt))
      expect(answer.model).toBe('sailor')
      const text = answer.choices[0]!.message.content!
      tuned += nauticalShare(text)
      expect(await json<ChatCompletion>(await chat('sailor', prompt)).then((a) => a.choices[0]!.message.content)).toBe(
        text,
      )
      base += nauticalShare(
        (await json<ChatCompletion>(await chat(DEV_CHAT_MODEL, prompt))).choices[0]!.message.content!,
      )
    }
    expect(tuned / prompts.length).toBeGreaterThan(0.7)
    expect(base).toBe(0)

    const streamed = await readChatStream(await chat('sailor', prompts[0]!, { stream: true }))
    const whole = await json<ChatCompletion>(await chat('sailor', prompts[0]!))
    expect(streamed.content[0]).toBe(whole.choices[0]!.message.content)

    const completion = await json<Completion>(
      await postJson(`${backend.url}/v1/completions`, { model: 'sailor', prompt: 'The sea', max_tokens: 64 }),
    )
    expect(completion.model).toBe('sailor')
    expect(nauticalShare(completion.choices[0]!.text)).toBeGreaterThan(0.5)
  })

  it('refuses like vLLM: a name loaded twice, a directory without a dev adapter, a foreign adapter', async () => {
    const again = await load('sailor', adapterDir)
    expect(again.status).toBe(400)
    expect((await json<ErrorBody>(again)).error).toMatchObject({
      message: "The lora adapter 'sailor' has already been loaded.",
      code: 400,
    })
    const missing = await load('ghost', join(dir, 'nowhere'))
    expect(missing.status).toBe(400)
    expect((await json<ErrorBody>(missing)).error.message).toMatch(/^Loading lora ghost failed: .*cannot be read/)

    const peft = join(dir, 'peft')
    await mkdir(peft)
    await writeFile(join(peft, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 16 }))
    const foreign = await load('peft', peft)
    expect(foreign.status).toBe(400)
    expect((await json<ErrorBody>(foreign)).error.message).toContain('serves only ZG_DEV_WORDLM adapters')
    expect((await postJson(`${backend.url}/v1/load_lora_adapter`, { lora_name: 'x' })).status).toBe(400)
  })

  it('unloads: the name is gone from /v1/models and answers 404 like any unknown model', async () => {
    const response = await unload('sailor')
    expect(response.status).toBe(200)
    expect(await response.text()).toBe("Success: LoRA adapter 'sailor' removed successfully.")
    const models = await json<{ data: Array<{ id: string }> }>(await fetch(`${backend.url}/v1/models`))
    expect(models.data.map((m) => m.id)).not.toContain('sailor')
    expect((await chat('sailor', 'Ahoy?')).status).toBe(404)
    const twice = await unload('sailor')
    expect(twice.status).toBe(404)
    expect((await json<ErrorBody>(twice)).error.message).toBe("The lora adapter 'sailor' cannot be found.")
  })
})
