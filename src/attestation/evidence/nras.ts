import { createHash } from 'node:crypto'
import { type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose'
import { normalizeHex } from './hex.ts'
import { MAX_GPUS } from './nvidia-payload.ts'

export const NRAS_ISSUER = 'https://nras.attestation.nvidia.com'
const MAX_TOKEN_CHARS = 32 * 1024

export type NrasGpuCheck = { name: string; ok: boolean; jti?: string; reasons: string[] }

export type NrasCheck = {
  ok: boolean
  /** jti of the overall token, for the attested-signer record. */
  jti?: string
  gpus: NrasGpuCheck[]
  reasons: string[]
}

/**
 * Verifies an NRAS detached EAT `[["JWT", overall], {"GPU-0": jwt, …}]` (tee-verification.md §4.2): every token
 * is ES384 from NRAS and valid at `now`; the overall token says `x-nvidia-overall-att-result`, carries our nonce and
 * lists in `submods` exactly the device tokens, each as ["DIGEST", ["SHA-256", sha256hex(token string)]]; each
 * device token carries our nonce and reports measurements matched, debug off, secure boot on.
 */
export async function verifyNrasEat(params: {
  eat: unknown
  keys: JWTVerifyGetKey
  expectedNonce: string
  now: Date
  /** How many GPUs the evidence we sent had; the EAT must cover exactly these. */
  expectedGpus?: number
  clockToleranceSec?: number
}): Promise<NrasCheck> {
  const reasons: string[] = []
  const nonce = normalizeHex(params.expectedNonce)
  const parsed = splitEat(params.eat)
  if (typeof parsed === 'string') return { ok: false, gpus: [], reasons: [parsed] }
  const verify = (token: string) =>
    jwtVerify(token, params.keys, {
      issuer: NRAS_ISSUER,
      algorithms: ['ES384'],
      currentDate: params.now,
      clockTolerance: params.clockToleranceSec ?? 30,
      requiredClaims: ['exp', 'iat', 'eat_nonce'],
    }).then(({ payload }) => payload)

  let overall: JWTPayload | undefined
  try {
    overall = await verify(parsed.overall)
  } catch (err) {
    reasons.push(`overall token: ${describe(err)}`)
  }
  if (overall) {
    if (overall['x-nvidia-overall-att-result'] !== true) reasons.push('x-nvidia-overall-att-result is not true')
    if (overall.eat_nonce !== nonce) reasons.push(`overall eat_nonce ${String(overall.eat_nonce)} is not ours`)
  }
  const submods = (overall?.submods ?? {}) as Record<string, unknown>
  const names = Object.keys(parsed.devices)
  if (overall && !sameKeys(Object.keys(submods), names)) {
    reasons.push('overall submods do not list exactly the device tokens')
  }
  if (params.expectedGpus !== undefined && names.length !== params.expectedGpus) {
    reasons.push(`EAT covers ${names.length} GPUs, the evidence had ${params.expectedGpus}`)
  }

  const gpus = await Promise.all(
    names.map(async (name): Promise<NrasGpuCheck> => {
      const token = parsed.devices[name]!
      const gpuReasons: string[] = []
      const digest = createHash('sha256').update(token, 'utf8').digest('hex')
      const listed = submods[name] as unknown
      if (overall && JSON.stringify(listed) !== JSON.stringify(['DIGEST', ['SHA-256', digest]])) {
        gpuReasons.push('sha256 of the device token differs from the overall submods digest')
      }
      let claims: JWTPayload | undefined
      try {
        claims = await verify(token)
      } catch (err) {
        gpuReasons.push(describe(err))
      }
      if (claims) {
        if (claims.eat_nonce !== nonce) gpuReasons.push(`eat_nonce ${String(claims.eat_nonce)} is not ours`)
        if (claims.measres !== 'success') gpuReasons.push(`measres ${String(claims.measres)}`)
        if (claims.dbgstat !== 'disabled') gpuReasons.push(`dbgstat ${String(claims.dbgstat)}`)
        if (claims.secboot !== true) gpuReasons.push('secure boot is off')
        if (claims['x-nvidia-gpu-arch-check'] !== true) gpuReasons.push('GPU architecture check failed')
      }
      for (const r of gpuReasons) reasons.push(`${name}: ${r}`)
      return { name, ok: gpuReasons.length === 0, jti: claims?.jti, reasons: gpuReasons }
    }),
  )
  return { ok: reasons.length === 0, jti: overall?.jti, gpus, reasons }
}

/** The two parts of a detached EAT, or why it is malformed. */
function splitEat(eat: unknown): { overall: string; devices: Record<string, string> } | string {
  let value = eat
  if (typeof eat === 'string') {
    if (eat.length > MAX_TOKEN_CHARS * (MAX_GPUS + 1)) return 'EAT too large'
    try {
      value = JSON.parse(eat)
    } catch {
      return 'EAT is not JSON'
    }
  }
  if (!Array.isArray(value) || value.length !== 2) return 'EAT is not [["JWT", token], {submods}]'
  const [head, devices] = value as [unknown, unknown]
  if (!Array.isArray(head) || head[0] !== 'JWT' || typeof head[1] !== 'string') return 'EAT head is not ["JWT", token]'
  if (typeof devices !== 'object' || devices === null || Array.isArray(devices)) return 'EAT submods is not an object'
  const entries = Object.entries(devices)
  if (entries.length === 0 || entries.length > MAX_GPUS) return `EAT must cover 1..${MAX_GPUS} GPUs`
  const tokens = [head[1], ...entries.map(([, t]) => t)]
  if (!tokens.every((t) => typeof t === 'string' && t.length <= MAX_TOKEN_CHARS)) {
    return 'EAT token too large or not a string'
  }
  return { overall: head[1], devices: Object.fromEntries(entries) as Record<string, string> }
}

function sameKeys(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((k) => b.includes(k))
}

function describe(err: unknown): string {
  const code = (err as { code?: string }).code
  return code ? `${code}: ${(err as Error).message}` : (err as Error).message
}
