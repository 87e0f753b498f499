import type { Budgets, Reservation } from '../billing/budgets.ts'
import type { Usage } from '../billing/pricing.ts'
import type { RateCounter } from '../billing/rate-limits.ts'
import { DEFAULT_MAX_OUTPUT_TOKENS, statedMaxTokens, worstCaseFee } from '../billing/worst-case-fee.ts'
import { format0G } from '../chain/units.ts'
import type { CatalogEntry } from '../providers/catalog.ts'
import type { ApiKeyIdentity } from './http/api-keys.ts'
import { GatewayError } from './http/openai-error.ts'

/** One call's per-key checks, as forward() sees them: it narrows candidates on admission and settles on record. */
export type Admission = {
  /** The candidates this key may use; reserves the call's worst case among them. Throws a GatewayError to refuse. */
  admit(candidates: readonly CatalogEntry[]): Promise<readonly CatalogEntry[]>
  /** The call was recorded with this fee (0n when nothing was billed); resolves once the spend is written. */
  settle(fee: bigint, usage: Usage | undefined): Promise<void>
  /** The call failed before it was recorded: what admission held is released, and it costs nothing. */
  release(): Promise<void>
}

export type AdmissionRequest = {
  /** The model as the client named it (before alias resolution). */
  model: string
  endpoint: string
  /** The parsed JSON body, or undefined for an upload. */
  json: Record<string, unknown> | undefined
  bodyBytes: number
}

/**
 * The body a budgeted chat call goes out with: its own when it states an output cap, else with max_tokens set to
 * the cap its reservation assumed (a completion without one writes the API's default 16 anyway).
 */
export function cappedBody(req: AdmissionRequest): Uint8Array | undefined {
  if (req.endpoint !== 'chat/completions' || !req.json || statedMaxTokens(req.endpoint, req.json) !== undefined)
    return undefined
  return Buffer.from(JSON.stringify({ ...req.json, max_tokens: Number(DEFAULT_MAX_OUTPUT_TOKENS) }))
}

/** Tokens a call is expected to use, for the TPM check: ~4 bytes a token of prompt, plus any stated output cap. */
function tokenEstimate(req: AdmissionRequest): number {
  const j = req.json ?? {}
  const prompt = j.messages ?? j.prompt ?? j.input
  const bytes = prompt === undefined ? req.bodyBytes : Buffer.byteLength(JSON.stringify(prompt))
  return Math.ceil(bytes / 4) + Number(statedMaxTokens(req.endpoint, j) ?? 0n)
}

/** The per-key policy: allowed models, verification level, budget and rate limits. */
export class KeyAdmission {
  readonly #budgets: Budgets
  readonly #limiter: RateCounter

  constructor(budgets: Budgets, limiter: RateCounter) {
    this.#budgets = budgets
    this.#limiter = limiter
  }

  /**
   * Checks what can be checked before routing (model, rate limits) and returns the hook forward() calls once the
   * candidates are known, with the rate-limit headers every answer of this key carries; undefined for keys without
   * a policy (the dev key, configured keys).
   */
  async admission(
    key: ApiKeyIdentity,
    req: AdmissionRequest,
  ): Promise<{ admission: Admission; headers: Record<string, string>; body?: Uint8Array } | undefined> {
    const policy = key.policy
    if (!policy) return undefined
    if (policy.allowedModels.length && !policy.allowedModels.includes(req.model)) {
      throw new GatewayError(403, `This API key may not use model ${req.model}.`, {
        type: 'invalid_request_error',
        code: 'model_not_allowed',
        param: 'model',
      })
    }
    let headers: Record<string, string> = {}
    const limits = { rpm: policy.rpm ?? undefined, tpm: policy.tpm ?? undefined }
    const limited = limits.rpm !== undefined || limits.tpm !== undefined
    if (limited) {
      const decision = await this.#limiter.admit(key.id, limits, tokenEstimate(req))
      headers = decision.headers
      if (!decision.ok) {
        throw new GatewayError(429, `Rate limit reached for this API key: retry in ${decision.retryAfter} s.`, {
          type: 'rate_limit_error',
          code: 'rate_limit_exceeded',
          headers: { ...headers, 'retry-after': String(decision.retryAfter) },
        })
      }
    }
    let reservation: Reservation | undefined
    let done = false
    const budgets = this.#budgets
    const limiter = this.#limiter
    const admission: Admission = {
      async admit(allowed) {
        // (The key's verification requirement narrowed the candidates before: src/gateway/verification-policy.ts.)
        if (policy.budget === null || !allowed.length) return allowed
        // Any of them may serve the call (failover): hold what the dearest would charge.
        let worst = 0n
        for (const c of allowed) {
          const fee = worstCaseFee(req.endpoint, req.json, req.bodyBytes, c)
          if (fee > worst) worst = fee
        }
        const held = await budgets.reserve(key.id, worst)
        if ('refused' in held) {
          throw new GatewayError(
            429,
            `This API key's budget is used up: ${format0G(held.remaining)} 0G remaining of ${format0G(held.budget)} 0G, ` +
              `and this call may cost up to ${format0G(worst)} 0G.`,
            {
              type: 'insufficient_quota',
              code: 'insufficient_quota',
              headers: { ...headers, 'x-should-retry': 'false' },
            },
          )
        }
        reservation = held
        return allowed
      },
      async settle(fee, usage) {
        if (done) return
        done = true
        await Promise.all([
          reservation && budgets.settle(reservation, fee),
          limited && usage?.kind === 'tokens' && limiter.charge(key.id, Number(usage.input + usage.output)),
        ])
      },
      async release() {
        if (done) return
        done = true
        if (reservation) await budgets.settle(reservation, 0n)
      },
    }
    return { admission, headers, body: policy.budget === null ? undefined : cappedBody(req) }
  }
}
