import { readFile } from 'node:fs/promises'
import { normalizeHex } from './hex.ts'

/**
 * Which measured values L3 accepts. Each list is lowercase hex (0x optional); an absent or empty list leaves that
 * value unconstrained, and the check result says so. `keyProviders` lists KMS ids (the `id` of the dstack
 * `key-provider` event). JSON file shape:
 * `{"mrTd": ["b24d…"], "rtmr0": [], "rtmr1": [], "rtmr2": [], "composeHashes": ["fbc9…"], "osImageHashes": [],
 *   "keyProviders": ["3059…"]}`
 */
export type MeasurementPolicy = {
  mrTd?: string[]
  rtmr0?: string[]
  rtmr1?: string[]
  rtmr2?: string[]
  composeHashes?: string[]
  osImageHashes?: string[]
  keyProviders?: string[]
}

export const POLICY_KEYS = [
  'mrTd',
  'rtmr0',
  'rtmr1',
  'rtmr2',
  'composeHashes',
  'osImageHashes',
  'keyProviders',
] as const
export type PolicyKey = (typeof POLICY_KEYS)[number]

export class MeasurementPolicyError extends Error {
  override name = 'MeasurementPolicyError'
}

/** Validates a parsed policy object: known keys only (a typo must not silently unconstrain), hex strings only. */
export function parseMeasurementPolicy(value: unknown): MeasurementPolicy {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MeasurementPolicyError('policy must be a JSON object')
  }
  const policy: MeasurementPolicy = {}
  for (const [key, list] of Object.entries(value)) {
    if (!(POLICY_KEYS as readonly string[]).includes(key)) throw new MeasurementPolicyError(`unknown policy key ${key}`)
    if (!Array.isArray(list) || !list.every((v) => typeof v === 'string' && /^(0x)?[0-9a-fA-F]+$/.test(v))) {
      throw new MeasurementPolicyError(`${key} must be an array of hex strings`)
    }
    policy[key as PolicyKey] = list.map(normalizeHex)
  }
  return policy
}

/** Reads a policy JSON file (shape above). */
export async function loadMeasurementPolicy(path: string): Promise<MeasurementPolicy> {
  const text = await readFile(path, 'utf8')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new MeasurementPolicyError(`${path} is not JSON`)
  }
  return parseMeasurementPolicy(parsed)
}
