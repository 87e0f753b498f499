import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { anvilPrivateKey } from '../devnet/anvil.ts'
import { responseSignatureText } from './response-signature.ts'
import { RECEIPT_FORMAT, type ReceiptPayload, signReceipt, verifySignedReceipt } from './signed-receipt.ts'

// Public anvil keys: the gateway's wallet, a provider's TEE signer, somebody else.
const gateway = privateKeyToAccount(anvilPrivateKey(1))
const tee = privateKeyToAccount(anvilPrivateKey(5))
const other = privateKeyToAccount(anvilPrivateKey(6))

async function payload(over: Partial<ReceiptPayload> = {}): Promise<ReceiptPayload> {
  const text = responseSignatureText('{"model":"m"}', '{"id":"x"}')
  const [request_sha256, response_sha256] = text.split(':') as [string, string]
  return {
    format: RECEIPT_FORMAT,
    gateway: gateway.address,
    request_id: 'req_1',
    chat_key: 'k1',
    provider: other.address,
    model: 'm',
    endpoint: 'chat/completions',
    created: 1_700_000_000,
    request_sha256,
    response_sha256,
    provider_signature: await tee.signMessage({ message: text }),
    signer: tee.address,
    status: 'verified',
    level: 'L1',
    attestation: null,
    block_number: '42',
    fee: '123456789012345678901',
    usage: { input: '10', output: '20' },
    ...over,
  }
}

describe('signed receipts', () => {
  it('verify offline: the gateway signature and the provider signature inside', async () => {
    const signed = await signReceipt(gateway, await payload())
    const check = await verifySignedReceipt(signed, { gateway: gateway.address })
    expect(check).toMatchObject({ ok: true, providerSignature: 'valid', payload: { fee: '123456789012345678901' } })
  })

  it('refuse any changed byte of the payload, a forged envelope and another gateway', async () => {
    const signed = await signReceipt(gateway, await payload())
    for (let i = 0; i < signed.payload.length; i += 17) {
      const c = signed.payload[i] === 'a' ? 'b' : 'a'
      const payloadChanged = signed.payload.slice(0, i) + c + signed.payload.slice(i + 1)
      expect((await verifySignedReceipt({ ...signed, payload: payloadChanged })).ok).toBe(false)
    }
    expect(await verifySignedReceipt({ ...signed, gateway: other.address })).toMatchObject({ ok: false })
    expect(await verifySignedReceipt(signed, { gateway: other.address })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not by the expected gateway/),
    })
    expect(await verifySignedReceipt({ hello: 'world' })).toMatchObject({ ok: false })
  })

  it('refuse a provider signature by another key than the signer named, unless the receipt records a dispute', async () => {
    const forged = await payload({ provider_signature: await other.signMessage({ message: 'x:y' }) })
    expect(await verifySignedReceipt(await signReceipt(gateway, forged))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/recovers to .* not to/),
    })
    const disputed = await signReceipt(gateway, { ...forged, status: 'disputed', level: null })
    expect(await verifySignedReceipt(disputed)).toMatchObject({ ok: true, providerSignature: 'disputed' })
    const unsigned = await signReceipt(gateway, await payload({ provider_signature: null, status: 'unverified' }))
    expect(await verifySignedReceipt(unsigned)).toMatchObject({ ok: true, providerSignature: 'absent' })
  })
})
