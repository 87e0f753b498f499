import { createHash } from 'node:crypto'
import type { DstackEvents } from './event-log.ts'
import { normalizeHex } from './hex.ts'
import { type MeasurementPolicy, POLICY_KEYS, type PolicyKey } from './measurement-policy.ts'
import type { QuoteMeasurements } from './quote-measurements.ts'

export type CheckOutcome = { ok: boolean; reason?: string }

export type ComposeCheck = {
  ok: boolean
  /** compose-hash event (bound by the RTMR3 replay). */
  composeHash?: string
  /** sha256(app_compose) equals the event; undefined when the report carries no app_compose. */
  appCompose?: CheckOutcome
  /** mr_config_id == 0x01 ‖ compose_hash ‖ 0-padding; undefined when the quote's mr_config_id is all zero. */
  mrConfigId?: CheckOutcome
  reasons: string[]
}

/**
 * Ties the compose file to the measured workload: the RTMR3 compose-hash event must equal sha256(app_compose)
 * and, where the quote carries it (current dstack), mr_config_id = 0x01 ‖ compose_hash (tee-verification.md §2.5).
 */
export function checkCompose(params: { events: DstackEvents; appCompose?: string; mrConfigId: string }): ComposeCheck {
  const reasons: string[] = []
  const composeHash = params.events.composeHash
  if (composeHash === undefined) reasons.push('event log has no compose-hash event')
  let appCompose: CheckOutcome | undefined
  if (params.appCompose !== undefined) {
    const hash = createHash('sha256').update(params.appCompose, 'utf8').digest('hex')
    appCompose =
      hash === composeHash ? { ok: true } : { ok: false, reason: `sha256(app_compose) ${hash} != compose-hash event` }
  }
  let mrConfigId: CheckOutcome | undefined
  const configId = normalizeHex(params.mrConfigId)
  if (!/^0+$/.test(configId)) {
    const expected = `01${composeHash ?? ''}`.padEnd(96, '0')
    mrConfigId =
      composeHash !== undefined && configId === expected
        ? { ok: true }
        : { ok: false, reason: `mr_config_id ${configId} != 0x01 ‖ compose-hash` }
  }
  for (const outcome of [appCompose, mrConfigId]) {
    if (outcome?.reason) reasons.push(outcome.reason)
  }
  return { ok: reasons.length === 0, composeHash, appCompose, mrConfigId, reasons }
}

export type MeasurementCheck = {
  ok: boolean
  /** Per policy key: `pass`/`fail` when its list is non-empty, `unconstrained` otherwise. */
  checks: Record<PolicyKey, 'pass' | 'fail' | 'unconstrained'>
  constrained: PolicyKey[]
  unconstrained: PolicyKey[]
  reasons: string[]
}

/** Compares quote measurements and dstack events with the allowlists of a policy. */
export function checkMeasurements(
  quote: QuoteMeasurements,
  events: DstackEvents,
  policy: MeasurementPolicy,
): MeasurementCheck {
  const values: Record<PolicyKey, string | undefined> = {
    mrTd: quote.mrTd,
    rtmr0: quote.rtmrs[0],
    rtmr1: quote.rtmrs[1],
    rtmr2: quote.rtmrs[2],
    composeHashes: events.composeHash,
    osImageHashes: events.osImageHash,
    keyProviders: events.keyProvider?.id,
  }
  const checks = {} as MeasurementCheck['checks']
  const reasons: string[] = []
  for (const key of POLICY_KEYS) {
    const allowed = (policy[key] ?? []).map(normalizeHex)
    if (allowed.length === 0) {
      checks[key] = 'unconstrained'
      continue
    }
    const value = values[key] === undefined ? undefined : normalizeHex(values[key])
    checks[key] = value !== undefined && allowed.includes(value) ? 'pass' : 'fail'
    if (checks[key] === 'fail') reasons.push(`${key}: ${value ?? 'absent'} is not in the allowlist`)
  }
  const constrained = POLICY_KEYS.filter((k) => checks[k] !== 'unconstrained')
  const unconstrained = POLICY_KEYS.filter((k) => checks[k] === 'unconstrained')
  return { ok: reasons.length === 0, checks, constrained, unconstrained, reasons }
}
