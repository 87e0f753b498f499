import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { NVIDIA_DEVICE_IDENTITY_ROOT_PEM } from './nvidia-device-root.ts'
import { NvidiaPayloadError, parseNvidiaPayload } from './nvidia-payload.ts'
import { verifyNvidiaPayloadLocally, verifySpdmEvidence } from './spdm.ts'

const vectors = new URL('../../../test/fixtures/tee-vectors/', import.meta.url)
const text = (path: string) => readFileSync(new URL(path, vectors), 'utf8')
const expected = JSON.parse(text('expected.json')) as Record<string, Record<string, unknown>>
const canned = expected['nvidia/hopperAttestationReport.hex.txt']!
const llm = expected['0g/llm_attestation_report.json']!

const now = new Date('2026-06-29T02:06:37Z')
const evidence = new Uint8Array(Buffer.from(text('nvidia/hopperAttestationReport.hex.txt').trim(), 'hex'))
const chain = text('nvidia/hopperCertChain.pem')
const cannedNonce = canned['requester_nonce_hex_(bytes_4..36)'] as string
const pems = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!

describe('local SPDM evidence check', () => {
  it('the vendored root constant is nvidia/nvidia_device_identity_root.pem', () => {
    expect(NVIDIA_DEVICE_IDENTITY_ROOT_PEM.trim()).toBe(text('nvidia/nvidia_device_identity_root.pem').trim())
  })

  it('nvtrust canned H100 evidence: chain to the NVIDIA root, P-384 signature and requester nonce', () => {
    expect(evidence.length).toBe(canned.evidence_bytes)
    expect(pems).toHaveLength(5)
    const result = verifySpdmEvidence({ evidence, certificateChainPem: chain, expectedNonce: cannedNonce, now })
    expect(result).toEqual({
      ok: true,
      chain: true,
      signature: true,
      nonce: true,
      evidenceNonce: cannedNonce,
      reasons: [],
    })
  })

  it('a chain that stops before the root (the root is then added from the pin) still verifies', () => {
    const certificateChainPem = pems.slice(0, 4).join('\n')
    expect(verifySpdmEvidence({ evidence, certificateChainPem, expectedNonce: cannedNonce, now }).ok).toBe(true)
  })

  it('0G LLM report: 1/1 H100 verifies with nonce == request_nonce', () => {
    const report = JSON.parse(text('0g/llm_attestation_report.json')) as Record<string, string>
    const payload = parseNvidiaPayload(report.nvidia_payload)
    expect(payload.nonce).toBe(llm.request_nonce)
    expect(payload.evidenceList).toHaveLength(1)
    const result = verifyNvidiaPayloadLocally(payload, `0x${llm.request_nonce}`, now)
    expect(result.reasons).toEqual([])
    expect(result.ok).toBe(true)
    expect(result.gpus[0]).toMatchObject({ chain: true, signature: true, nonce: true })
  })

  it('a wrong nonce is refused (canned evidence served for a fresh challenge)', () => {
    const result = verifySpdmEvidence({ evidence, certificateChainPem: chain, expectedNonce: '11'.repeat(32), now })
    expect(result).toMatchObject({ ok: false, chain: true, signature: true, nonce: false })
    expect(result.reasons).toEqual([`evidence nonce ${cannedNonce} is not ours`])
  })

  it('one tampered byte in the signed transcript invalidates the signature', () => {
    const tampered = evidence.slice()
    tampered[200]! ^= 1
    const result = verifySpdmEvidence({
      evidence: tampered,
      certificateChainPem: chain,
      expectedNonce: cannedNonce,
      now,
    })
    expect(result).toMatchObject({ ok: false, chain: true, signature: false, nonce: true })
  })

  it('a tampered nonce byte fails both the signature and the nonce', () => {
    const tampered = evidence.slice()
    tampered[10]! ^= 1
    const result = verifySpdmEvidence({
      evidence: tampered,
      certificateChainPem: chain,
      expectedNonce: cannedNonce,
      now,
    })
    expect(result).toMatchObject({ ok: false, signature: false, nonce: false })
  })

  it('a chain not anchored at the pinned root is refused', () => {
    const collateral = JSON.parse(text('intel-dcap/tdx_quote_collateral.json')) as Record<string, string>
    const intelRoot = collateral
      .tcb_info_issuer_chain!.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!
      .at(-1)!
    const result = verifySpdmEvidence({
      evidence,
      certificateChainPem: chain,
      expectedNonce: cannedNonce,
      now,
      rootPem: intelRoot,
    })
    expect(result).toMatchObject({ ok: false, chain: false, signature: false })
    expect(result.reasons[0]).toMatch(/certificate chain: cert 4 .* is not signed by the next one/)
  })

  it('a chain with a link missing is refused', () => {
    const certificateChainPem = [pems[0], pems[2], pems[3], pems[4]].join('\n')
    const result = verifySpdmEvidence({ evidence, certificateChainPem, expectedNonce: cannedNonce, now })
    expect(result.chain).toBe(false)
    expect(result.reasons[0]).toMatch(/cert 0 .*GH100 A01 GSP FMC LF.* is not signed/)
  })

  it('checks validity dates against the given now', () => {
    const result = verifySpdmEvidence({
      evidence,
      certificateChainPem: chain,
      expectedNonce: cannedNonce,
      now: new Date('2019-01-01T00:00:00Z'),
    })
    expect(result.reasons[0]).toMatch(/cert 0 not valid at 2019-01-01/)
  })

  it('caps chain length and evidence size, and requires a signed GET_MEASUREMENTS exchange', () => {
    const long = Array.from({ length: 9 }, () => pems[0]).join('\n')
    expect(
      verifySpdmEvidence({ evidence, certificateChainPem: long, expectedNonce: cannedNonce, now }).reasons[0],
    ).toMatch(/more than 8 certificates/)
    const big = new Uint8Array(64 * 1024 + 1)
    big.set(evidence)
    expect(verifySpdmEvidence({ evidence: big, certificateChainPem: chain, expectedNonce: cannedNonce, now }).ok).toBe(
      false,
    )
    const unsigned = evidence.slice()
    unsigned[2] = 0
    expect(
      verifySpdmEvidence({ evidence: unsigned, certificateChainPem: chain, expectedNonce: cannedNonce, now }).reasons,
    ).toEqual(['evidence is not a signed SPDM GET_MEASUREMENTS/MEASUREMENTS exchange'])
  })
})

describe('nvidia_payload parsing', () => {
  const item = {
    certificate: Buffer.from(chain).toString('base64'),
    evidence: Buffer.from(evidence).toString('base64'),
    arch: 'HOPPER',
  }

  it('accepts the JSON string and object forms', () => {
    const payload = { nonce: cannedNonce, evidence_list: [item], arch: 'HOPPER' }
    expect(parseNvidiaPayload(JSON.stringify(payload))).toEqual(parseNvidiaPayload(payload))
    expect(parseNvidiaPayload(payload).evidenceList[0]!.certificateChainPem).toBe(chain)
  })

  it('refuses over 16 GPUs, oversized evidence and malformed fields', () => {
    const many = { nonce: cannedNonce, evidence_list: Array.from({ length: 17 }, () => item), arch: 'HOPPER' }
    expect(() => parseNvidiaPayload(many)).toThrow(/1\.\.16/)
    const huge = { ...item, evidence: Buffer.alloc(64 * 1024 + 3).toString('base64') }
    expect(() => parseNvidiaPayload({ nonce: cannedNonce, evidence_list: [huge], arch: 'HOPPER' })).toThrow(
      NvidiaPayloadError,
    )
    expect(() => parseNvidiaPayload({ nonce: 'abc', evidence_list: [item], arch: 'HOPPER' })).toThrow(/nonce/)
    expect(() => parseNvidiaPayload('{')).toThrow(/not JSON/)
  })

  it('a payload whose own nonce is not ours is refused even when the evidence is', () => {
    const payload = parseNvidiaPayload({ nonce: '22'.repeat(32), evidence_list: [item], arch: 'HOPPER' })
    const result = verifyNvidiaPayloadLocally(payload, cannedNonce, now)
    expect(result).toMatchObject({ ok: false, payloadNonce: false })
    expect(result.gpus[0]!.ok).toBe(true)
  })
})
