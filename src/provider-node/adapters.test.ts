import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent } from 'undici'
import type { Address } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DevBackend, startDevBackend } from '../devnet/backends/index.ts'
import { VOCABULARY } from '../devnet/backends/prose.ts'
import { packAdapter } from '../fine-tuning/adapter-archive.ts'
import { trainDevAdapter, writeDevAdapter } from '../fine-tuning/dev-trainer.ts'
import { readTrainingExamples } from '../fine-tuning/examples.ts'
import { DEFAULT_HYPERPARAMETERS } from '../fine-tuning/hyperparameters.ts'
import { NAUTICAL_WORDS, nauticalChatJsonl } from '../fine-tuning/test-support.ts'
import { AdapterRegistry } from './adapters.ts'
import { BackendPool } from './backends.ts'
import { ProviderError } from './provider-error.ts'

const ALICE = '0x00000000000000000000000000000000000A11CE' as Address
const BOB = '0x0000000000000000000000000000000000000B0B' as Address
const NAME = 'ft:dev/chat-deterministic:captain:abc'

let backend: DevBackend
let dir: string
let archive: Uint8Array
const dispatcher = new Agent()

beforeAll(async () => {
  backend = await startDevBackend({ port: 0, tokenDelayMs: 0 })
  dir = mkdtempSync(join(tmpdir(), 'zg-adapters-'))
  const adapter = await trainDevAdapter({
    examples: readTrainingExamples(nauticalChatJsonl()),
    baseModel: 'dev/chat-deterministic',
    baseVocabulary: VOCABULARY,
    hyperparameters: DEFAULT_HYPERPARAMETERS,
  })
  mkdirSync(join(dir, 'trained'))
  await writeDevAdapter(join(dir, 'trained'), adapter)
  archive = await packAdapter(join(dir, 'trained'))
})
afterAll(async () => {
  await backend?.close()
  await dispatcher.close()
  rmSync(dir, { recursive: true, force: true })
})

const registry = (sub: string) =>
  new AdapterRegistry({
    dir: join(dir, sub),
    backends: new BackendPool({ urls: [backend.url] }),
    dispatcher,
    log: () => {},
  })

async function chat(model: string): Promise<string> {
  const res = await fetch(`${backend.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] }),
  })
  return ((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content
}

describe('fine-tuned adapters on a provider node', () => {
  it('loads an owner’s adapter into the backend, refuses it to other users, and restores it after a restart', async () => {
    const nodeA = registry('node')
    await nodeA.restore()
    await nodeA.deploy(NAME, ALICE, archive)
    const words = (await chat(NAME)).toLowerCase().match(/[a-z]+/g) ?? []
    expect(words.filter((w) => NAUTICAL_WORDS.includes(w as never)).length / words.length).toBeGreaterThan(0.6)
    expect(() => nodeA.check(NAME, ALICE)).not.toThrow()
    expect(() => nodeA.check(NAME, BOB)).toThrow(ProviderError)
    expect(() => nodeA.check('dev/chat-deterministic', BOB)).not.toThrow()
    expect(nodeA.list(ALICE)).toEqual([NAME])
    expect(nodeA.list(BOB)).toEqual([])
    // Another user cannot take the name over, nor remove it.
    await expect(nodeA.deploy(NAME, BOB, archive)).rejects.toMatchObject({ status: 409 })
    expect(await nodeA.remove(NAME, BOB)).toBe(false)

    // A restarted node (the backend restarted too: it knows no adapter) loads it again from its directory.
    await fetch(`${backend.url}/v1/unload_lora_adapter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lora_name: NAME }),
    })
    const nodeB = registry('node')
    await nodeB.restore()
    expect(nodeB.list(ALICE)).toEqual([NAME])
    expect(() => nodeB.check(NAME, BOB)).toThrow(ProviderError)
    expect((await chat(NAME)).length).toBeGreaterThan(0)

    expect(await nodeB.remove(NAME, ALICE)).toBe(true)
    expect(nodeB.list(ALICE)).toEqual([])
    expect(() => nodeB.check(NAME, BOB)).not.toThrow()
  })

  it('refuses an archive that is not one, and a name that is not plain', async () => {
    const node = registry('bad')
    await node.restore()
    await expect(node.deploy('ft:x::y', ALICE, new Uint8Array([1, 2, 3]))).rejects.toMatchObject({
      status: 400,
      code: 'invalid_adapter',
    })
    await expect(node.deploy('ft:x\n::y', ALICE, archive)).rejects.toMatchObject({ status: 400 })
    expect(node.list(ALICE)).toEqual([])
  })
})
