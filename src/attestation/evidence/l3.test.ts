import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Quote } from '@phala/dcap-qvl'
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { parseAttestationReport } from './attestation-report.ts'
import { dstackEvents } from './event-log.ts'
import { evaluateEvidence } from './l3.ts'
import type { MeasurementPolicy } from './measurement-policy.ts'
import { NRAS_ISSUER } from './nras.ts'
import { quoteMeasurements } from './quote-measurements.ts'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const agplDir = resolve(
  process.env.ZG_TEE_VECTORS ?? resolve(root, '../shared/tee-vectors'),
  'captured-neardirect-2026-06-29',
)
const text = (path: string) => readFileSync(resolve(root, 'test/fixtures/tee-vectors', path), 'utf8')
const llmNonce = '034b9c390f073a9c8f8a1b50e537342fff3952bf2f32f145174e8d87588ed2da'
const now = new Date('2026-06-29T02:06:37Z')

/** Parses a report and reads its measurements from the quote bytes (as L2 hands them over after DCAP). */
function load(body: string) {
  const report = parseAttestationReport(body)
  return { report, quote: quoteMeasurements(Quote.parse(report.quoteBytes).report) }
}

/** The policy a operator would write after reviewing this exact deployment. */
function pinned({ report, quote }: ReturnType<typeof load>): MeasurementPolicy {
  const events = dstackEvents(report.eventLog)
  return {
    mrTd: [quote.mrTd],
    rtmr0: [quote.rtmrs[0]],
    rtmr1: [quote.rtmrs[1]],
    rtmr2: [quote.rtmrs[2]],
    composeHashes: [events.composeHash!],
    osImageHashes: [events.osImageHash!],
    keyProviders: [events.keyProvider!.id],
  }
}

describe('L3 evidence evaluation on the vendored 0G reports', () => {
  const llm = load(text('0g/llm_attestation_report.json'))
  const broker = load(text('0g/broker_attestation_report.json'))

  it('0G LLM node: replay, compose, pinned measurements and 1/1 local GPU check pass', async () => {
    const result = await evaluateEvidence({ ...llm, nonce: llmNonce, policy: pinned(llm), now })
    expect(result.reasons).toEqual([])
    expect(result.ok).toBe(true)
    expect(result.measurements.unconstrained).toEqual([])
    expect(result.compose).toMatchObject({ appCompose: { ok: true }, mrConfigId: { ok: true } })
    expect(result.gpu.local?.gpus).toHaveLength(1)
    expect(result.gpu.nras).toBeUndefined()
  })

  it('0G LLM node with an NRAS EAT (own ES384 key) for its GPU', async () => {
    const keys = await generateKeyPair('ES384', { extractable: true })
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT({ eat_nonce: llmNonce, ...claims })
        .setProtectedHeader({ alg: 'ES384', kid: 'k' })
        .setIssuer(NRAS_ISSUER)
        .setIssuedAt(Math.floor(now.getTime() / 1000))
        .setExpirationTime('1h')
        .sign(keys.privateKey)
    const gpu = await sign({ measres: 'success', dbgstat: 'disabled', secboot: true, 'x-nvidia-gpu-arch-check': true })
    const digest = createHash('sha256').update(gpu).digest('hex')
    const overall = await sign({
      'x-nvidia-overall-att-result': true,
      submods: { 'GPU-0': ['DIGEST', ['SHA-256', digest]] },
    })
    const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(keys.publicKey)), kid: 'k' }] })
    const eat = [['JWT', overall], { 'GPU-0': gpu }]
    const result = await evaluateEvidence({ ...llm, nonce: llmNonce, policy: {}, now, nras: { eat, keys: jwks } })
    expect(result.reasons).toEqual([])
    expect(result.gpu.nras?.ok).toBe(true)
    const twoGpus = [['JWT', overall], { 'GPU-0': gpu, 'GPU-1': gpu }]
    const mismatch = await evaluateEvidence({
      ...llm,
      nonce: llmNonce,
      policy: {},
      now,
      nras: { eat: twoGpus, keys: jwks },
    })
    expect(mismatch.reasons).toContain('NRAS: EAT covers 2 GPUs, the evidence had 1')
  })

  it('a nonce other than the one the GPU evidence carries is refused', async () => {
    const result = await evaluateEvidence({ ...llm, nonce: '00'.repeat(32), policy: {}, now })
    expect(result.ok).toBe(false)
    expect(result.reasons[0]).toMatch(/^local GPU check: nvidia_payload nonce .* is not ours/)
    expect(result.rtmrReplay.ok).toBe(true)
  })

  it('an edited app_compose in the JSON is a compose mismatch', async () => {
    const body = JSON.parse(text('0g/llm_attestation_report.json'))
    body.info.tcb_info.app_compose = body.info.tcb_info.app_compose.replace('"TOKEN"', '"T0KEN"')
    const result = await evaluateEvidence({ ...load(JSON.stringify(body)), nonce: llmNonce, policy: {}, now })
    expect(result.ok).toBe(false)
    expect(result.reasons).toHaveLength(1)
    expect(result.reasons[0]).toMatch(/sha256\(app_compose\) .* != compose-hash event/)
  })

  it('a measurement outside the policy fails while the rest passes', async () => {
    const policy = { ...pinned(llm), composeHashes: [createHash('sha256').update('other').digest('hex')] }
    const result = await evaluateEvidence({ ...llm, nonce: llmNonce, policy, now })
    expect(result.measurements.checks).toMatchObject({ composeHashes: 'fail', mrTd: 'pass' })
    expect(result.reasons).toEqual([
      `composeHashes: ${dstackEvents(llm.report.eventLog).composeHash} is not in the allowlist`,
    ])
  })

  it('an event log from another deployment does not replay to this quote', async () => {
    const result = await evaluateEvidence({
      report: broker.report,
      quote: llm.quote,
      nonce: llmNonce,
      policy: {},
      now,
      requireGpu: false,
    })
    expect(result.ok).toBe(false)
    expect(result.rtmrReplay.matches).toContain(false)
  })

  it('0G broker (no GPU): passes with requireGpu false, fails by default', async () => {
    const cpuOnly = await evaluateEvidence({
      ...broker,
      nonce: llmNonce,
      policy: pinned(broker),
      now,
      requireGpu: false,
    })
    expect(cpuOnly.reasons).toEqual([])
    expect(cpuOnly.ok).toBe(true)
    const strict = await evaluateEvidence({ ...broker, nonce: llmNonce, policy: {}, now })
    expect(strict.reasons).toEqual(['no GPU evidence in the report'])
  })
})

describe('L3 on the NEAR capture (AGPL, read from shared/tee-vectors when present)', () => {
  it('8/8 GPUs locally and via NRAS at iat+60 s, RTMR replay, compose and mr_config_id', async () => {
    if (!existsSync(agplDir)) {
      console.warn(`NOT RUN: L3 on the NEAR 8-GPU capture (${agplDir} absent); vendored 0G L3 checks above did run`)
      expect(existsSync(resolve(root, 'test/fixtures/tee-vectors/0g/llm_attestation_report.json'))).toBe(true)
      return
    }
    const near = load(readFileSync(resolve(agplDir, 'attestation_report.json'), 'utf8'))
    const manifest = JSON.parse(readFileSync(resolve(agplDir, 'manifest.json'), 'utf8'))
    const jwks = createLocalJWKSet(JSON.parse(readFileSync(resolve(agplDir, 'nras_jwks_at_capture.json'), 'utf8')))
    const eat = JSON.parse(readFileSync(resolve(agplDir, 'nras_eat.json'), 'utf8'))
    const result = await evaluateEvidence({
      ...near,
      nonce: manifest.nonce_hex,
      policy: pinned(near),
      now: new Date('2026-06-29T02:07:34Z'),
      nras: { eat, keys: jwks },
    })
    expect(result.reasons).toEqual([])
    expect(result.gpu.local?.gpus.filter((g) => g.ok)).toHaveLength(8)
    expect(result.gpu.nras?.gpus.filter((g) => g.ok)).toHaveLength(8)
    expect(result.compose).toMatchObject({ appCompose: { ok: true }, mrConfigId: { ok: true } })
  })
})
