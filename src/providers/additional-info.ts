import { type Address, getAddress, isAddress } from 'viem'

/**
 * One input-length tier (0g-protocol.md §2). Multipliers are a numerator over an optional denominator (missing means
 * 1), as the broker writes them; `maxInputTokens: 0` is the unlimited top tier.
 */
export type PricingTier = {
  maxInputTokens: number
  inputMultiplier: number
  outputMultiplier: number
  inputMultiplierDenominator?: number
  outputMultiplierDenominator?: number
}

/**
 * Service.additionalInfo, parsed. The known keys of the 0G broker (0g-protocol.md §2) are typed; any other key, and
 * a known key whose value has the wrong type, is kept in `extra`, so nothing a provider wrote is lost.
 * `valid: false` means the string is not a JSON object; then only `raw` is set.
 */
export type AdditionalInfo = {
  raw: string
  valid: boolean
  VerifierURL?: string
  /** "dstack" (Phala) or "cryptopilot". */
  TEEVerifier?: string
  /** The model runs in a TEE separate from the broker; with TargetTeeAddress, that key signs responses. */
  TargetSeparated?: boolean
  TargetTeeAddress?: Address
  ImageName?: string
  ImageDigest?: string
  /** "decentralized" | "centralized" | "standard". */
  ProviderType?: string
  /** The upstream vendor of a centralized provider, e.g. "openai". */
  ProviderIdentity?: string
  /**
   * The broker writes `true` for a provider that serves several models behind one address (the list is then only
   * in its /v1/models). A list of model ids is accepted too.
   */
  MultiModel?: boolean | string[]
  /** "NATIVE" | "USD". */
  priceDenomination?: string
  tieredPricing?: { tiers: PricingTier[] }
  cacheTokenBilling?: { divisor: number }
  extra: Record<string, unknown>
}

type Field = Exclude<keyof AdditionalInfo, 'raw' | 'valid' | 'extra'>

/** How each known key is read: the typed value, or undefined when the value does not fit (it then goes to extra). */
const readers: { [K in Field]: (v: unknown) => AdditionalInfo[K] | undefined } = {
  VerifierURL: str,
  TEEVerifier: str,
  TargetSeparated: bool,
  TargetTeeAddress: (v) => (typeof v === 'string' && isAddress(v, { strict: false }) ? getAddress(v) : undefined),
  ImageName: str,
  ImageDigest: str,
  ProviderType: str,
  ProviderIdentity: str,
  MultiModel: (v) => bool(v) ?? (Array.isArray(v) && v.every((x) => typeof x === 'string') ? [...v] : undefined),
  priceDenomination: str,
  tieredPricing: (v) => {
    const tiers = isObject(v) ? v.tiers : undefined
    if (!Array.isArray(tiers)) return undefined
    const parsed = tiers.map(tier)
    return parsed.every((t) => t !== undefined) ? { tiers: parsed as PricingTier[] } : undefined
  },
  cacheTokenBilling: (v) => {
    const divisor = isObject(v) ? v.divisor : undefined
    return typeof divisor === 'number' && Number.isFinite(divisor) && divisor > 0 ? { divisor } : undefined
  },
}

/** Parses Service.additionalInfo; never throws (it is untrusted on-chain text). */
export function parseAdditionalInfo(raw: string): AdditionalInfo {
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return { raw, valid: false, extra: {} }
  }
  if (!isObject(json)) return { raw, valid: false, extra: {} }
  const info: AdditionalInfo = { raw, valid: true, extra: {} }
  for (const [key, value] of Object.entries(json)) {
    const read = Object.hasOwn(readers, key) ? readers[key as keyof typeof readers] : undefined
    const typed = read?.(value)
    // defineProperty: a "__proto__" key in the JSON must stay data, not replace the prototype of `extra`.
    if (typed === undefined) Object.defineProperty(info.extra, key, { value, enumerable: true, writable: true })
    else (info as Record<string, unknown>)[key] = typed
  }
  return info
}

function tier(v: unknown): PricingTier | undefined {
  if (!isObject(v)) return undefined
  const { maxInputTokens, inputMultiplier, outputMultiplier, inputMultiplierDenominator, outputMultiplierDenominator } =
    v
  if (!num(maxInputTokens) || !num(inputMultiplier) || !num(outputMultiplier)) return undefined
  const t: PricingTier = { maxInputTokens, inputMultiplier, outputMultiplier }
  if (num(inputMultiplierDenominator)) t.inputMultiplierDenominator = inputMultiplierDenominator
  if (num(outputMultiplierDenominator)) t.outputMultiplierDenominator = outputMultiplierDenominator
  return t
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

/** The broker writes JSON booleans; a "true"/"false" string is read the same, as Go's strconv would. */
function bool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v
  if (v === 'true' || v === 'false') return v === 'true'
  return undefined
}

function num(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
