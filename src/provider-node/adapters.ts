import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { type Agent, request } from 'undici'
import { type Address, getAddress } from 'viem'
import { unpackAdapter } from '../fine-tuning/adapter-archive.ts'
import type { BackendPool } from './backends.ts'
import { ProviderError } from './provider-error.ts'

/** What the node keeps of an adapter beside its files. */
type AdapterMeta = { name: string; owner: Address; deployedAt: number }

export type AdapterRegistryOptions = {
  /** Where adapters are unpacked, one directory each. */
  dir: string
  backends: BackendPool
  backendApiKey?: string
  dispatcher: Agent
  log: (line: string) => void
}

/** An adapter's name: what a call's `model` says (`ft:<base>:<suffix>:<id>`), printable and bounded. */
const NAME = /^[\w.:/@+-]{1,256}$/

/**
 * Fine-tuned LoRA adapters deployed on this node's backends through vLLM's runtime LoRA API
 * (`/v1/load_lora_adapter`). Each belongs to the user who deployed it: a call naming another user's adapter is
 * refused as if the model did not exist, since the adapter was trained on that user's private data.
 */
export class AdapterRegistry {
  readonly #o: AdapterRegistryOptions
  readonly #owners = new Map<string, Address>()

  constructor(options: AdapterRegistryOptions) {
    this.#o = options
  }

  /** Reads the adapters deployed before a restart and loads them into the backends again. */
  async restore(): Promise<void> {
    await mkdir(this.#o.dir, { recursive: true })
    for (const entry of await readdir(this.#o.dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue
      try {
        const meta = JSON.parse(await readFile(join(this.#o.dir, entry.name, 'zg-adapter.json'), 'utf8')) as AdapterMeta
        this.#owners.set(meta.name, getAddress(meta.owner))
        await this.#loadEverywhere(meta.name, join(this.#o.dir, entry.name))
      } catch (err) {
        this.#o.log(`provider node: adapter ${entry.name} was not restored: ${(err as Error).message}`)
      }
    }
  }

  /** The refusal for a call by `user` naming an adapter that is not theirs; undefined otherwise. */
  check(model: string, user: Address): void {
    const owner = this.#owners.get(model)
    if (owner && owner !== getAddress(user)) {
      throw new ProviderError(404, 'model_not_found', `The model ${model} does not exist.`, { param: 'model' })
    }
  }

  list(user: Address): string[] {
    const who = getAddress(user)
    return [...this.#owners].filter(([, owner]) => owner === who).map(([name]) => name)
  }

  /** Unpacks `archive` (a stranger's zip: capped, no paths out of its directory) and loads it into every backend. */
  async deploy(name: string, owner: Address, archive: Uint8Array): Promise<void> {
    if (!NAME.test(name))
      throw new ProviderError(400, 'invalid_adapter_name', 'an adapter name is 1 to 256 plain characters')
    const current = this.#owners.get(name)
    if (current && current !== getAddress(owner))
      throw new ProviderError(409, 'adapter_exists', `another user has an adapter named ${name}`)
    const dir = join(this.#o.dir, createHash('sha256').update(name).digest('hex').slice(0, 32))
    const staging = `${dir}.staging`
    await rm(staging, { recursive: true, force: true })
    try {
      await unpackAdapter(archive, staging)
    } catch (err) {
      await rm(staging, { recursive: true, force: true })
      throw new ProviderError(
        400,
        'invalid_adapter',
        `the adapter archive cannot be unpacked: ${(err as Error).message}`,
      )
    }
    const meta: AdapterMeta = { name, owner: getAddress(owner), deployedAt: Date.now() }
    await writeFile(join(staging, 'zg-adapter.json'), JSON.stringify(meta))
    if (current) await this.#unloadEverywhere(name)
    await rm(dir, { recursive: true, force: true })
    await rename(staging, dir)
    this.#owners.set(name, meta.owner)
    await this.#loadEverywhere(name, dir)
  }

  async remove(name: string, owner: Address): Promise<boolean> {
    if (this.#owners.get(name) !== getAddress(owner)) return false
    await this.#unloadEverywhere(name)
    this.#owners.delete(name)
    await rm(join(this.#o.dir, createHash('sha256').update(name).digest('hex').slice(0, 32)), {
      recursive: true,
      force: true,
    })
    return true
  }

  async #loadEverywhere(name: string, dir: string): Promise<void> {
    for (const backend of this.#o.backends.states()) {
      await this.#call(backend.url, '/v1/load_lora_adapter', { lora_name: name, lora_path: resolve(dir) })
    }
  }

  async #unloadEverywhere(name: string): Promise<void> {
    for (const backend of this.#o.backends.states()) {
      await this.#call(backend.url, '/v1/unload_lora_adapter', { lora_name: name }).catch(() => {})
    }
  }

  async #call(base: string, path: string, body: unknown): Promise<void> {
    const res = await request(`${base}${path}`, {
      method: 'POST',
      dispatcher: this.#o.dispatcher,
      headers: {
        'content-type': 'application/json',
        ...(this.#o.backendApiKey ? { authorization: `Bearer ${this.#o.backendApiKey}` } : {}),
      },
      body: JSON.stringify(body),
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
    })
    const text = await res.body.text()
    if (res.statusCode >= 300) {
      throw new ProviderError(502, 'backend_adapter_error', `the backend refused ${path}: ${text.slice(0, 300)}`)
    }
  }
}
