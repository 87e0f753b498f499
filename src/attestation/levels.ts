import type { AdditionalInfo } from '../providers/additional-info.ts'

/**
 * Verification levels, weakest first (docs/verification.md): none (not signed), L0 (signed by a key nobody vouches
 * for), L1 (the signer acknowledged on-chain), L2 (that signer's TDX quote verified), L3 (and its workload and GPUs).
 */
export const VERIFICATION_LEVELS = ['none', 'L0', 'L1', 'L2', 'L3'] as const
export type VerificationLevel = (typeof VERIFICATION_LEVELS)[number]

/** The verifiabilities the 0G SDK treats as signed by a TEE key (model.isVerifiability). */
export const VERIFIABLE = new Set(['OpML', 'TeeML', 'ZKML'])

export const isLevel = (v: unknown): v is VerificationLevel =>
  typeof v === 'string' && (VERIFICATION_LEVELS as readonly string[]).includes(v)

/** Whether `level` is at least `min`. */
export const reaches = (level: VerificationLevel, min: VerificationLevel): boolean =>
  VERIFICATION_LEVELS.indexOf(level) >= VERIFICATION_LEVELS.indexOf(min)

/** The stronger of two levels. */
export const stronger = (a: VerificationLevel, b: VerificationLevel): VerificationLevel => (reaches(a, b) ? a : b)

/** What a provider's answers can be checked at: its signer's attested level, else what the chain says of it. */
export function providerLevel(
  entry: { verifiability: string; teeSignerAcknowledged: boolean },
  attested: 'L2' | 'L3' | null | undefined,
): VerificationLevel {
  if (!VERIFIABLE.has(entry.verifiability)) return 'none'
  if (!entry.teeSignerAcknowledged) return 'L0'
  return attested ?? 'L1'
}

/**
 * A provider whose model runs inside its TEE (0G Router's privacy mode): TeeML, not forwarding to a model outside
 * it (additionalInfo.TargetSeparated is false for a broker and vLLM in one CVM).
 */
export function runsInTee(entry: { verifiability: string; additionalInfo: AdditionalInfo }): boolean {
  return entry.verifiability === 'TeeML' && entry.additionalInfo.TargetSeparated !== true
}
