import { parse0G } from '../../chain/units.ts'
import { ROUTING_HEADERS, routingControlsOf } from '../routing-controls.ts'
import type { KeySettings, MinVerification } from './api-keys.ts'

/**
 * Key settings from the admin API's JSON (snake_case) or the CLI's flags mapped to the same names. Budgets are 0G
 * as decimal text ("0.25"), turned into neuron exactly; expiry an ISO 8601 date. null clears a setting.
 * Throws a RangeError saying what is wrong.
 */
export function parseKeySettings(input: Record<string, unknown>): KeySettings {
  const out: KeySettings = {}
  const fail = (message: string): never => {
    throw new RangeError(message)
  }
  const has = (k: string) => input[k] !== undefined
  if (has('name')) out.name = typeof input.name === 'string' && input.name ? input.name : fail('name must be text')
  if (has('metadata')) out.metadata = input.metadata as Record<string, unknown>
  if (has('expires_at')) {
    const v = input.expires_at
    if (v === null) out.expiresAt = null
    else {
      const ms = typeof v === 'string' ? Date.parse(v) : Number.NaN
      out.expiresAt = Number.isFinite(ms) ? ms : fail('expires_at must be an ISO 8601 date')
    }
  }
  if (has('allowed_models')) out.allowedModels = (input.allowed_models ?? []) as string[]
  if (has('min_verification')) out.minVerification = (input.min_verification ?? 'none') as MinVerification
  if (has('tee_only')) out.teeOnly = (input.tee_only ?? false) as boolean
  if (has('timeouts')) out.timeouts = timeoutsOf(input.timeouts, fail)
  if (has('routing')) out.routing = routingSettingOf(input.routing, fail)
  if (has('budget')) {
    const v = input.budget
    out.budget =
      v === null
        ? null
        : typeof v === 'string' || typeof v === 'number'
          ? parse0G(String(v))
          : fail('budget is 0G as text')
  }
  if (has('budget_period')) out.budgetPeriod = input.budget_period as KeySettings['budgetPeriod']
  for (const k of ['rpm', 'tpm'] as const) {
    if (has(k)) out[k] = input[k] as number | null
  }
  return out
}

/** `timeouts` as JSON: `{first_byte_ms, total_ms, idle_ms}` (any of them), or null for the gateway's. */
function timeoutsOf(value: unknown, fail: (message: string) => never): KeySettings['timeouts'] {
  if (value === null) return null
  if (typeof value !== 'object' || Array.isArray(value))
    return fail('timeouts is an object of first_byte_ms, total_ms, idle_ms')
  const names: Record<string, 'firstByteMs' | 'totalMs' | 'idleMs'> = {
    first_byte_ms: 'firstByteMs',
    total_ms: 'totalMs',
    idle_ms: 'idleMs',
  }
  const out: NonNullable<KeySettings['timeouts']> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const key = names[k] ?? fail(`timeouts takes first_byte_ms, total_ms and idle_ms, not ${k}`)
    out[key] =
      typeof v === 'number' && Number.isSafeInteger(v) && v > 0
        ? v
        : fail(`timeouts.${k} is a positive number of milliseconds`)
  }
  return out
}

/** Settings names of the routing defaults, and the request headers they stand for (read by the same parser). */
const ROUTING_SETTINGS: Record<string, string> = {
  provider: ROUTING_HEADERS.provider,
  sort: ROUTING_HEADERS.sort,
  allow_fallbacks: ROUTING_HEADERS.allowFallbacks,
  max_price_prompt: ROUTING_HEADERS.maxPricePrompt,
  max_price_completion: ROUTING_HEADERS.maxPriceCompletion,
}

/** `routing` as JSON: `{provider, sort, allow_fallbacks, max_price_prompt, max_price_completion}`, or null. */
function routingSettingOf(value: unknown, fail: (message: string) => never): KeySettings['routing'] {
  if (value === null) return null
  if (typeof value !== 'object' || Array.isArray(value)) return fail('routing is an object')
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const header = ROUTING_SETTINGS[k] ?? fail(`routing takes ${Object.keys(ROUTING_SETTINGS).join(', ')}, not ${k}`)
    headers[header] = String(v)
  }
  try {
    return routingControlsOf((name) => headers[name]) ?? null
  } catch (err) {
    return fail(`routing: ${(err as Error).message}`)
  }
}
