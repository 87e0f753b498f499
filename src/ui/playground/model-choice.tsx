import { useState } from 'preact/hooks'
import { priceText, shortAddress } from '../format.ts'
import type { ModelObject, ProviderRow } from '../types.ts'

export type ModelChoice = {
  model: ModelObject | undefined
  models: ModelObject[]
  pin: string
  setModel(id: string): void
  setPin(address: string): void
  /** The routing headers of the choice: a pinned provider (0G Router's x-0g-provider-address). */
  headers: Record<string, string>
}

/** The models of one kind of service, the chosen one (a served model before an alias), and a provider pin. */
export function useModelChoice(all: ModelObject[], serviceType: string): ModelChoice {
  const models = all.filter((m) => m.service_type === serviceType)
  const [id, setId] = useState('')
  const [pin, setPin] = useState('')
  const model = models.find((m) => m.id === id) ?? models.find((m) => !m.alias_for) ?? models[0]
  return {
    model,
    models,
    pin,
    setModel: (next) => {
      setId(next)
      setPin('')
    },
    setPin,
    headers: pin ? { 'x-0g-provider-address': pin } : {},
  }
}

/**
 * The model and provider pickers. Providers come from /v1/models; with the admin key, /admin/providers adds each
 * one's verification level and circuit.
 */
export function ModelFields({ choice, rows }: { choice: ModelChoice; rows: ProviderRow[] }) {
  const { model } = choice
  const rowOf = (address: string) => rows.find((r) => r.provider.toLowerCase() === address.toLowerCase())
  if (!model) return <p class="muted">No provider serves a model of this kind right now.</p>
  return (
    <div class="fields">
      <label>
        Model
        <select value={model.id} onChange={(e) => choice.setModel(e.currentTarget.value)}>
          {choice.models.map((m) => (
            <option key={m.id} value={m.id}>
              {m.alias_for ? `${m.id} → ${m.alias_for}` : m.id}
            </option>
          ))}
        </select>
      </label>
      <label>
        Provider
        <select value={choice.pin} onChange={(e) => choice.setPin(e.currentTarget.value)}>
          <option value="">any: the gateway routes</option>
          {model.providers.map((p) => {
            const row = rowOf(p.address)
            const state = row ? `${row.level}, circuit ${row.breaker.state}` : p.verifiability
            return (
              <option key={p.address} value={p.address}>
                {`${shortAddress(p.address)} · ${state} · ${priceText(model.service_type, p.input_price, p.output_price)}`}
                {p.healthy ? '' : ' · unhealthy'}
              </option>
            )
          })}
        </select>
      </label>
    </div>
  )
}
