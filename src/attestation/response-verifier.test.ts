import type { Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { anvilPrivateKey } from '../devnet/anvil.ts'
import { responseSignatureText } from './response-signature.ts'
import { type VerifyDeliveryParams, verifyDelivery } from './response-verifier.ts'

// Public anvil keys: a provider's TEE signer, and somebody else.
const signer = privateKeyToAccount(anvilPrivateKey(5))
const other = privateKeyToAccount(anvilPrivateKey(6))
const REQUEST = new TextEncoder().encode('{"model":"m","messages":[{"role":"user","content":"hi"}]}')
const RESPONSE = new TextEncoder().encode('{"id":"chatcmpl-1","choices":[{"message":{"content":"hello"}}]}')
const TEXT = responseSignatureText(REQUEST, RESPONSE)

/** A provider serving `served` at its signature route, counting how often it is asked. */
function provider(served: { status: number; json?: unknown }) {
  const calls: string[] = []
  return {
    calls,
    fetchJson: async (url: string) => {
      calls.push(url)
      return { status: served.status, json: served.json }
    },
  }
}

function params(over: Partial<VerifyDeliveryParams>): VerifyDeliveryParams {
  return {
    url: 'https://provider.example',
    model: 'm',
    verifiability: 'TeeML',
    teeSignerAddress: signer.address,
    teeSignerAcknowledged: true,
    resKey: 'a3f0c0de-0000-4000-8000-000000000001',
    requestBody: REQUEST,
    responseBody: RESPONSE,
    fetchJson: async () => {
      throw new Error('no signature route in this test')
    },
    ...over,
  }
}

describe('verifyDelivery', () => {
  it('accepts the signature sent with the response without asking the provider again', async () => {
    const p = provider({ status: 500 })
    const signature = await signer.signMessage({ message: TEXT })
    const receipt = await verifyDelivery(params({ signature, fetchJson: p.fetchJson }))
    expect(receipt).toMatchObject({ status: 'verified', level: 'L1', signer: signer.address })
    expect(receipt.detail).toMatch(/\(sent with the response\)$/)
    expect(p.calls).toEqual([])
  })

  it('checks a sent signature against hashes as well as bodies', async () => {
    const p = provider({ status: 500 })
    const signature = await signer.signMessage({ message: TEXT })
    const [requestHash, responseHash] = TEXT.split(':') as [string, string]
    const receipt = await verifyDelivery(
      params({ signature, requestBody: { sha256: requestHash }, responseBody: { sha256: responseHash }, ...p }),
    )
    expect(receipt.status).toBe('verified')
    expect(p.calls).toEqual([])
  })

  it('falls back to the served signature when the sent one is by another key or over other bytes', async () => {
    const served = { text: TEXT, signature: await signer.signMessage({ message: TEXT }) }
    for (const sent of [
      await other.signMessage({ message: TEXT }),
      await signer.signMessage({ message: responseSignatureText(REQUEST, 'something else') }),
      '0x1234' as Hex,
    ]) {
      const p = provider({ status: 200, json: served })
      const receipt = await verifyDelivery(params({ signature: sent, fetchJson: p.fetchJson }))
      expect(receipt.status).toBe('verified')
      expect(receipt.detail).toMatch(/\(fetched from the provider\)$/)
      expect(p.calls).toEqual([
        'https://provider.example/v1/proxy/signature/a3f0c0de-0000-4000-8000-000000000001?model=m',
      ])
    }
  })

  it('disputes a delivery whose sent and served signatures are both wrong', async () => {
    const wrong = await other.signMessage({ message: TEXT })
    const p = provider({ status: 200, json: { text: TEXT, signature: wrong } })
    const receipt = await verifyDelivery(params({ signature: wrong, fetchJson: p.fetchJson }))
    expect(receipt).toMatchObject({ status: 'disputed', detail: 'signature check failed: wrong_signer' })
  })

  it('fetches the served signature when none was sent (any 0G provider, and streams from them)', async () => {
    const p = provider({ status: 200, json: { text: TEXT, signature: await signer.signMessage({ message: TEXT }) } })
    expect((await verifyDelivery(params({ fetchJson: p.fetchJson }))).status).toBe('verified')
    expect(p.calls).toHaveLength(1)
    const missing = provider({ status: 404 })
    expect(await verifyDelivery(params({ fetchJson: missing.fetchJson }))).toMatchObject({
      status: 'unverified',
      detail: 'signature fetch answered 404',
    })
  })

  it('does not trust a sent signature for a service that is not TEE-signed or whose signer is not acknowledged', async () => {
    const signature = await signer.signMessage({ message: TEXT })
    const p = provider({ status: 500 })
    expect((await verifyDelivery(params({ signature, verifiability: '', ...p }))).status).toBe('unverifiable')
    expect((await verifyDelivery(params({ signature, teeSignerAcknowledged: false, ...p }))).status).toBe(
      'unverifiable',
    )
    expect(p.calls).toEqual([])
  })
})
