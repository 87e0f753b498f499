import { parse0G } from '../../chain/units.ts'
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
