import { isLevel, providerLevel, reaches, runsInTee, stronger, type VerificationLevel } from '../attestation/levels.ts'
import type { CatalogEntry } from '../providers/catalog.ts'
import type { KeyPolicy } from './http/api-keys.ts'
import { GatewayError } from './http/openai-error.ts'
import type { AttestedSigners } from './receipts.ts'

/** What a call requires of the provider that serves it. */
export type VerificationRequirement = { minLevel: VerificationLevel; teeOnly: boolean }

/** Signers attested in-process (SignerAttestations): the cached view, and an attestation run on demand. */
export type SignerAttester = AttestedSigners & {
  attest(entry: CatalogEntry): Promise<{ level: 'L2' | 'L3' | null; reasons: string[] }>
  close(): Promise<void>
}

/** 0G Router's trust modes: `private` is its privacy mode (TEE only), `verified` asks for signed answers. */
const TRUST_MODES = new Set(['private', 'verified'])

/**
 * The requirement of one call: the key's (minimum level, TEE only) tightened by the request's
 * `x-zg-min-verification: none|L0..L3` and `x-0g-provider-trust-mode: private|verified`; undefined when nothing is
 * required. A header it cannot read is a 400 naming it.
 */
export function requirementOf(
  policy: Pick<KeyPolicy, 'minVerification' | 'teeOnly'> | undefined,
  headers: { minVerification?: string | null; trustMode?: string | null },
): VerificationRequirement | undefined {
  let minLevel: VerificationLevel = policy?.minVerification ?? 'none'
  let teeOnly = policy?.teeOnly ?? false
  const asked = headers.minVerification?.trim()
  if (asked) {
    if (!isLevel(asked)) throw badHeader('x-zg-min-verification', asked, 'none, L0, L1, L2 or L3')
    minLevel = stronger(minLevel, asked)
  }
  const mode = headers.trustMode?.trim().toLowerCase()
  if (mode) {
    if (!TRUST_MODES.has(mode)) throw badHeader('x-0g-provider-trust-mode', mode, 'private or verified')
    if (mode === 'private') teeOnly = true
    else minLevel = stronger(minLevel, 'L1')
  }
  return minLevel === 'none' && !teeOnly ? undefined : { minLevel, teeOnly }
}

/** A 400 naming a request header the gateway cannot read, and what it must be. */
export function badHeader(name: string, value: string, expected: string): GatewayError {
  return new GatewayError(400, `The ${name} header must be ${expected}, not ${JSON.stringify(value.slice(0, 40))}.`, {
    type: 'invalid_request_error',
    code: 'invalid_header',
    param: name,
  })
}

/**
 * The candidates that meet the requirement, in their order. An L2 or L3 requirement attests, now, the signers the
 * cache has no record of (once per signer; later calls read the cache). None left: a 503 saying what each reached.
 */
export async function meetRequirement(
  model: string,
  candidates: readonly CatalogEntry[],
  req: VerificationRequirement,
  attester: SignerAttester | undefined,
): Promise<readonly CatalogEntry[]> {
  const short: string[] = []
  const levels = await Promise.all(
    candidates.map(async (c) => {
      if (req.teeOnly && !runsInTee(c)) {
        short.push(`${c.provider} does not run its model in a TEE (${c.verifiability})`)
        return undefined
      }
      const chain = providerLevel(c, undefined)
      let attested = attester?.known(c.provider, c.teeSignerAddress)?.level
      let why = ''
      if (attested === undefined && chain === 'L1' && reaches(req.minLevel, 'L2')) {
        if (!attester) why = 'this gateway does not attest signers'
        else {
          const record = await attester.attest(c).catch((err: Error) => ({ level: null, reasons: [err.message] }))
          attested = record.level
          why = record.reasons.join('; ')
        }
      }
      const level = providerLevel(c, attested)
      if (!reaches(level, req.minLevel)) short.push(`${c.provider} reached ${level}${why ? ` (${why})` : ''}`)
      return reaches(level, req.minLevel) ? c : undefined
    }),
  )
  const met = levels.filter((c): c is CatalogEntry => c !== undefined)
  if (candidates.length && !met.length) {
    const wanted = [req.minLevel !== 'none' && `verification ${req.minLevel}`, req.teeOnly && 'a model run in a TEE']
      .filter(Boolean)
      .join(' and ')
    throw new GatewayError(503, `No provider of ${model} offers ${wanted}: ${short.join('; ')}.`, {
      type: 'api_error',
      code: 'no_provider_available',
    })
  }
  return met
}
