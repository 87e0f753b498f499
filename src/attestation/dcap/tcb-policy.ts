import type { QuoteVerification, TcbStatus } from './verify-quote.ts'

/**
 * Which TCB levels the gateway accepts (tee-verification.md §6.1, L2). Default: UpToDate; SWHardeningNeeded and
 * ConfigurationNeeded accepted with a warning (the platform is patched, its configuration or enclave code could
 * harden further); OutOfDate* and Revoked rejected unless every advisory they name is allow-listed.
 */
export type TcbPolicy = {
  accept: TcbStatus[]
  warn: TcbStatus[]
  /** Advisories (INTEL-SA-…) judged harmless for this deployment: an otherwise rejected status carrying only these passes. */
  allowedAdvisories: string[]
  /** dcap-qvl already rejects debug TDs/enclaves; this is a second check on the decoded flag. */
  allowDebug: boolean
}

export const DEFAULT_TCB_POLICY: TcbPolicy = {
  accept: ['UpToDate'],
  warn: ['SWHardeningNeeded', 'ConfigurationNeeded'],
  allowedAdvisories: [],
  allowDebug: false,
}

export type TcbVerdict = { ok: boolean; warnings: string[]; reason: string }

export function evaluateTcb(result: QuoteVerification, policy: TcbPolicy = DEFAULT_TCB_POLICY): TcbVerdict {
  const debug = result.td?.tdAttributes.debug ?? result.sgx?.debug ?? false
  if (debug && !policy.allowDebug)
    return { ok: false, warnings: [], reason: 'debug TEE: its memory is readable by the host' }
  const advisories = result.advisoryIds.length ? ` (${result.advisoryIds.join(', ')})` : ''
  if (policy.accept.includes(result.status)) return { ok: true, warnings: [], reason: `TCB ${result.status}` }
  if (policy.warn.includes(result.status)) {
    return {
      ok: true,
      warnings: [`TCB ${result.status}${advisories}`],
      reason: `TCB ${result.status} accepted with a warning`,
    }
  }
  const unlisted = result.advisoryIds.filter((id) => !policy.allowedAdvisories.includes(id))
  if (
    result.status !== 'Revoked' &&
    result.status !== 'Unknown' &&
    result.advisoryIds.length > 0 &&
    unlisted.length === 0
  ) {
    return {
      ok: true,
      warnings: [`TCB ${result.status}${advisories}, all allow-listed`],
      reason: `TCB ${result.status} accepted: every advisory is allow-listed`,
    }
  }
  return {
    ok: false,
    warnings: [],
    reason: `TCB ${result.status} rejected${unlisted.length ? `: advisories not allow-listed: ${unlisted.join(', ')}` : ''}`,
  }
}
