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
  /** For an alias: the model it stands for (the first served, when it has one per kind of service). */
  alias_for?: string
  /** For an alias with one target per kind of service: every served target. */
  alias_targets?: string[]
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
 * Every model some provider serves, then every alias with a served target, sorted by id. An alias is listed once,
 * under its first served target; `alias_targets` names them all when it has one per kind of service.
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
    const served = targets.filter((t) => byId.has(t))
    const model = served[0] && byId.get(served[0])
    if (!model) continue
    out.push({
      id: alias,
      object: 'model',
      created: Math.min(...model.providers.map((p) => Number(p.updatedAt))),
      owned_by: 'zg-gateway-alias',
      service_type: model.serviceType,
      providers: providersOf(model.providers),
      alias_for: model.id,
      ...(served.length > 1 ? { alias_targets: served } : {}),
    })
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}
