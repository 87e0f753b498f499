import { serviceTypeOfEndpoint } from './service-types.ts'

/** What the aliases need to know of the catalog: which service types serve a model id. */
export type ModelLookup = (model: string) => readonly { serviceType: string }[]

export type ModelAlias = { alias: string; targets: readonly string[] }

/**
 * Configured model names that stand for models on the network, so that code written for OpenAI (and LangChain's
 * default model) runs unchanged: `gpt-4o-mini=Qwen/Qwen2.5-7B-Instruct`. An alias may name several targets, one
 * per kind of service; a call resolves to the first target that a provider serves for its endpoint.
 */
export class ModelAliases {
  readonly #targets = new Map<string, string[]>()

  constructor(aliases: Iterable<readonly [alias: string, target: string]> = []) {
    for (const [alias, target] of aliases) this.add(alias, target)
  }

  /**
   * Parses `alias=target` specs (as given to `--model-alias` or, comma-separated, in ZG_MODEL_ALIASES). Throws on a
   * spec without both sides, so a typo fails at start-up rather than routing nowhere.
   */
  static parse(specs: Iterable<string>): ModelAliases {
    const aliases = new ModelAliases()
    for (const spec of specs) {
      const at = spec.indexOf('=')
      const alias = spec.slice(0, at).trim()
      const target = spec.slice(at + 1).trim()
      if (at < 0 || !alias || !target) throw new Error(`a model alias is written alias=target, not "${spec}"`)
      aliases.add(alias, target)
    }
    return aliases
  }

  add(alias: string, target: string): void {
    if (alias === target) throw new Error(`the model alias "${alias}" names itself`)
    const targets = this.#targets.get(alias)
    if (!targets) this.#targets.set(alias, [target])
    else if (!targets.includes(target)) targets.push(target)
  }

  get size(): number {
    return this.#targets.size
  }

  /** Every alias with its targets, sorted by alias. */
  list(): ModelAlias[] {
    return [...this.#targets.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([alias, targets]) => ({ alias, targets }))
  }

  /**
   * The model a call for `model` at `endpoint` goes to: `model` itself unless it is an alias; for an alias, its
   * first target that some provider serves with the endpoint's service type, else its first target served at all,
   * else its first target (which then fails as a model nobody serves, by its real name).
   */
  resolve(model: string, endpoint: string, lookup: ModelLookup): string {
    const targets = this.#targets.get(model)
    if (!targets) return model
    const wanted = serviceTypeOfEndpoint(endpoint)
    let served: string | undefined
    for (const target of targets) {
      const entries = lookup(target)
      if (entries.length === 0) continue
      if (wanted === undefined || entries.some((e) => e.serviceType === wanted)) return target
      served ??= target
    }
    return served ?? targets[0]!
  }
}
