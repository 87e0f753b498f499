import type { Context } from 'hono'
import { z } from 'zod'
import { DevAdapterError, readDevAdapter, softmax } from '../../fine-tuning/dev-trainer.ts'
import { BackendError, checkModel, readBody } from './errors.ts'
import { DEV_CHAT_MODEL } from './models.ts'
import type { WordPicker } from './prose.ts'

/**
 * Adapters loaded at run time, through vLLM's API for it (`VLLM_ALLOW_RUNTIME_LORA_UPDATING`):
 * `POST /v1/load_lora_adapter {lora_name, lora_path}` and `POST /v1/unload_lora_adapter {lora_name}`, answered like
 * vLLM with a plain-text success or a JSON error. The dev backend serves the dev trainer's adapters
 * (src/fine-tuning/dev-trainer.ts): a chat or completion request naming one writes the dev chat model's prose with
 * words drawn from the adapter's word distribution instead of uniformly from the base vocabulary.
 */
export type LoadedAdapter = {
  name: string
  /** The directory it was loaded from (vLLM reports it as the model's `root`). */
  path: string
  /** The served model it adapts (vLLM's `parent`). */
  parent: string
  pickWord: WordPicker
}

export class LoraAdapters {
  readonly #loaded = new Map<string, LoadedAdapter>()

  async load(name: string, path: string): Promise<LoadedAdapter> {
    // vLLM's wording, so that a caller (the provider node) can tell the two cases apart as it would with vLLM.
    if (this.#loaded.has(name)) throw new BackendError(400, `The lora adapter '${name}' has already been loaded.`)
    if (name === DEV_CHAT_MODEL) throw new BackendError(400, `The lora adapter name '${name}' is the base model's`)
    let adapter: Awaited<ReturnType<typeof readDevAdapter>>
    try {
      adapter = await readDevAdapter(path)
    } catch (e) {
      if (e instanceof DevAdapterError) throw new BackendError(400, `Loading lora ${name} failed: ${e.message}`)
      throw e
    }
    // Two loads of one name raced through the reading above: the first one in wins, as in vLLM.
    if (this.#loaded.has(name)) throw new BackendError(400, `The lora adapter '${name}' has already been loaded.`)
    const loaded = { name, path, parent: DEV_CHAT_MODEL, pickWord: wordPicker(adapter.model) }
    this.#loaded.set(name, loaded)
    return loaded
  }

  unload(name: string): void {
    if (!this.#loaded.delete(name)) throw new BackendError(404, `The lora adapter '${name}' cannot be found.`)
  }

  get(name: string): LoadedAdapter | undefined {
    return this.#loaded.get(name)
  }

  list(): LoadedAdapter[] {
    return [...this.#loaded.values()]
  }
}

/** Words drawn from softmax(logits): one uniform draw per word, found in the cumulative distribution. */
export function wordPicker(model: { vocabulary: string[]; logits: number[] }): WordPicker {
  const p = softmax(model.logits)
  const cumulative = new Float64Array(p.length)
  let sum = 0
  for (let i = 0; i < p.length; i++) cumulative[i] = sum += p[i]!
  return (rng) => {
    const x = rng.next() * sum
    let lo = 0
    let hi = cumulative.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cumulative[mid]! > x) hi = mid
      else lo = mid + 1
    }
    return model.vocabulary[lo]!
  }
}

/** The text model a request names: the dev chat model, or a loaded adapter (its words). */
export function resolveTextModel(
  requested: string | null | undefined,
  adapters: LoraAdapters,
): { model: string; pickWord?: WordPicker } {
  const adapter = requested == null ? undefined : adapters.get(requested)
  if (adapter) return { model: adapter.name, pickWord: adapter.pickWord }
  return { model: checkModel(requested, DEV_CHAT_MODEL) }
}

const loadSchema = z.looseObject({ lora_name: z.string().min(1), lora_path: z.string().min(1) })
const unloadSchema = z.looseObject({ lora_name: z.string().min(1) })

/** POST /v1/load_lora_adapter */
export async function loadLoraAdapter(c: Context, adapters: LoraAdapters): Promise<Response> {
  const { lora_name, lora_path } = await readBody(c, loadSchema)
  await adapters.load(lora_name, lora_path)
  return c.text(`Success: LoRA adapter '${lora_name}' added successfully.`)
}

/** POST /v1/unload_lora_adapter */
export async function unloadLoraAdapter(c: Context, adapters: LoraAdapters): Promise<Response> {
  const { lora_name } = await readBody(c, unloadSchema)
  adapters.unload(lora_name)
  return c.text(`Success: LoRA adapter '${lora_name}' removed successfully.`)
}
