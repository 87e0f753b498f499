import type { CatalogEntry, ProviderCatalog } from '../providers/catalog.ts'
import type { ModelAliases } from '../providers/model-aliases.ts'

/** A model as `/v1/models` lists it: OpenAI's fields, then the 0G service type and who serves it at what price. */
export type ModelObject = {
  id: string
  object: 'model'
  created: number
  owned_by: string
  service_type: string
  providers: Array<{
    address: string
    verifiability: string
    input_price: string
    output_price: string
    healthy: boolean
  }>
  /** For an alias: the model it stands for. */
  alias_for?: string
}

function providersOf(entries: readonly CatalogEntry[]): ModelObject['providers'] {
  return entries.map((p) => ({
    address: p.provider,
    verifiability: p.verifiability,
    input_price: p.inputPrice.toString(),
    output_price: p.outputPrice.toString(),
    healthy: p.healthy,
  }))
}

/**
 * Every model some provider serves, then every alias whose target one does, sorted by id. An alias with a target
 * per kind of service is listed once per target that is served, the first one under its own name.
 */
export function listModels(catalog: ProviderCatalog, aliases: ModelAliases): ModelObject[] {
  const models = catalog.models()
  const byId = new Map(models.map((m) => [m.id, m]))
  const out: ModelObject[] = models.map((m) => ({
    id: m.id,
    object: 'model',
    created: Math.min(...m.providers.map((p) => Number(p.updatedAt))),
    owned_by: '0g',
    service_type: m.serviceType,
    providers: providersOf(m.providers),
  }))
  for (const { alias, targets } of aliases.list()) {
    if (byId.has(alias)) continue
    for (const target of targets) {
      const model = byId.get(target)
      if (!model) continue
      out.push({
        id: alias,
        object: 'model',
        created: Math.min(...model.providers.map((p) => Number(p.updatedAt))),
        owned_by: 'zg-gateway-alias',
        service_type: model.serviceType,
        providers: providersOf(model.providers),
        alias_for: target,
      })
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}
