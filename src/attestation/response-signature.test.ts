import { type Address, getAddress, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import { type ChatSignature, responseSignatureText, verifyResponseSignature } from './response-signature.ts'

/**
 * Cases from test/fixtures/tee-vectors/0g/synthetic_chat_signature.json (CC0; made with the public Hardhat key #0), inlined
 * so the test needs no file outside the repo.
 */
const SIGNER = getAddress('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266')
const REQUEST = '{"model":"test-model","messages":[{"role":"user","content":"Say hi"}],"stream":false}'
const RESPONSE =
  '{"id":"chatcmpl-0123456789abcdef","object":"chat.completion","created":1760000000,"model":"test-model","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}'
const SIGNED: ChatSignature = {
  text: '13c9a47ea392428af1766627dce8735fd6e3a4f30d431e1c5e395276a3e8c616:2d60c32ab6253619e86a8d8f98097146709b54ec1fbca47fe5c3a4fa506f35ca',
  signature:
    '0xaf77e8ab26216acd8e405d349e97229d812edde5b21d654a5145ca1e6c43b27c12a1fdbd5601760763b39297d39d41b5ef25935f277158a0e1e47c25e16701461c',
  signing_address: SIGNER,
  signing_algo: 'ecdsa',
}
const STREAM_REQUEST = '{"model":"test-model","messages":[{"role":"user","content":"Say hi"}],"stream":true}'
const STREAM_RESPONSE =
  'data: {"id":"chatcmpl-fedcba9876543210","object":"chat.completion.chunk","created":1760000000,"model":"test-model","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-fedcba9876543210","object":"chat.completion.chunk","created":1760000000,"model":"test-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}\n\ndata: [DONE]\n\n'
const STREAM_SIGNED: ChatSignature = {
  text: 'd28dccb735099f87698797615b2aa035bad3371919b23811db0d5240550746f3:b451f94e08185f2fea522067c5749d3dd24fa5872f897b1445b893c8244535eb',
  signature:
    '0x3a2b668089e795a8d976134982668aea4eaecbc45abbede0adf08029e4955a993204debd6f4943d4fb0170d3b59cf37b1720d27e11836177654705f1d1a0a0f31b',
  signing_address: SIGNER,
  signing_algo: 'ecdsa',
}
/** The vector's "signature by another key" over the same text. */
const FOREIGN_SIGNATURE: Hex =
  '0x35ee9cddcde67e05534e2f2ba8c3f4d30bafe3da0c482a7fe550bc4a2fb0910a5634ef1c66ed7a7a14ead36c38fcf93860848d74d710d0d667c860927425bb9a1c'

describe('responseSignatureText', () => {
  it('is sha256hex(request):sha256hex(response) over the exact bytes, strings as UTF-8', () => {
    expect(responseSignatureText(REQUEST, RESPONSE)).toBe(SIGNED.text)
    expect(responseSignatureText(STREAM_REQUEST, STREAM_RESPONSE)).toBe(STREAM_SIGNED.text)
    expect(responseSignatureText(new TextEncoder().encode(REQUEST), Buffer.from(RESPONSE))).toBe(SIGNED.text)
    expect(responseSignatureText('', '')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    )
  })
})

describe('verifyResponseSignature', () => {
  it('accepts the vectors, with and without content binding, signer compared case-insensitively', async () => {
    const ok = { ok: true }
    expect(await verifyResponseSignature({ signature: SIGNED, expectedSigner: SIGNER })).toEqual(ok)
    expect(
      await verifyResponseSignature({
        signature: SIGNED,
        expectedSigner: SIGNER.toLowerCase() as Address,
        requestBody: REQUEST,
        responseBody: RESPONSE,
      }),
    ).toEqual(ok)
    expect(
      await verifyResponseSignature({
        signature: STREAM_SIGNED,
        expectedSigner: SIGNER,
        requestBody: Buffer.from(STREAM_REQUEST),
        responseBody: new TextEncoder().encode(STREAM_RESPONSE),
      }),
    ).toEqual(ok)
    // Either body alone is checked alone.
    expect(
      await verifyResponseSignature({ signature: SIGNED, expectedSigner: SIGNER, responseBody: RESPONSE }),
    ).toEqual(ok)
  })

  it('accepts what a viem account signs (v = 27/28 as 0G brokers produce)', async () => {
    const account = privateKeyToAccount(`0x${'42'.repeat(32)}`)
    const text = responseSignatureText('req', 'resp')
    const signature = await account.signMessage({ message: text })
    expect(['1b', '1c']).toContain(signature.slice(-2))
    const sig: ChatSignature = { text, signature, signing_address: account.address, signing_algo: 'ecdsa' }
    expect(
      await verifyResponseSignature({
        signature: sig,
        expectedSigner: account.address,
        requestBody: 'req',
        responseBody: 'resp',
      }),
    ).toEqual({ ok: true })
  })

  it('wrong_signer: a foreign key, or a served signing_address that lies', async () => {
    const foreign = { ...SIGNED, signature: FOREIGN_SIGNATURE }
    expect(await verifyResponseSignature({ signature: foreign, expectedSigner: SIGNER })).toEqual({
      ok: false,
      reason: 'wrong_signer',
    })
    const other = privateKeyToAccount(`0x${'42'.repeat(32)}`).address
    const lying = { ...SIGNED, signing_address: other }
    expect(await verifyResponseSignature({ signature: lying, expectedSigner: other })).toEqual({
      ok: false,
      reason: 'wrong_signer',
    })
  })

  it('request_mismatch / response_mismatch: the text does not hash what was sent and received', async () => {
    const tampered = RESPONSE.replace('"content":"hi"', '"content":"HI"')
    expect(
      await verifyResponseSignature({
        signature: SIGNED,
        expectedSigner: SIGNER,
        requestBody: REQUEST,
        responseBody: tampered,
      }),
    ).toEqual({ ok: false, reason: 'response_mismatch' })
    expect(
      await verifyResponseSignature({
        signature: SIGNED,
        expectedSigner: SIGNER,
        requestBody: STREAM_REQUEST,
        responseBody: RESPONSE,
      }),
    ).toEqual({ ok: false, reason: 'request_mismatch' })
    // A validly signed text from another exchange (a replay) fails too.
    expect(
      await verifyResponseSignature({
        signature: STREAM_SIGNED,
        expectedSigner: SIGNER,
        requestBody: REQUEST,
        responseBody: RESPONSE,
      }),
    ).toEqual({ ok: false, reason: 'request_mismatch' })
  })

  it('bad_signature: the signature recovers no key', async () => {
    const zero = { ...SIGNED, signature: `0x${'00'.repeat(64)}1b` as Hex }
    expect(await verifyResponseSignature({ signature: zero, expectedSigner: SIGNER })).toEqual({
      ok: false,
      reason: 'bad_signature',
    })
  })

  it('malformed: bad shapes, and texts that cannot be checked against the bodies', async () => {
    const bad: unknown[] = [
      null,
      'x',
      { ...SIGNED, text: 42 },
      { ...SIGNED, signature: '0x1234' },
      { ...SIGNED, signature: SIGNED.signature.slice(2) },
      { ...SIGNED, signing_algo: 'ed25519' },
    ]
    for (const signature of bad) {
      expect(
        await verifyResponseSignature({ signature: signature as ChatSignature, expectedSigner: SIGNER }),
        JSON.stringify(signature),
      ).toEqual({ ok: false, reason: 'malformed' })
    }
    expect(await verifyResponseSignature({ signature: SIGNED, expectedSigner: 'nobody' as Address })).toEqual({
      ok: false,
      reason: 'malformed',
    })

    // An E2EE-style text, validly signed, cannot be bound to plaintext bodies.
    const account = privateKeyToAccount(`0x${'42'.repeat(32)}`)
    const text = `zg-sig-v1/e2ee-ct:${responseSignatureText(REQUEST, RESPONSE)}`
    const e2ee: ChatSignature = {
      text,
      signature: await account.signMessage({ message: text }),
      signing_address: account.address,
      signing_algo: 'ecdsa',
    }
    expect(await verifyResponseSignature({ signature: e2ee, expectedSigner: account.address })).toEqual({ ok: true })
    expect(
      await verifyResponseSignature({ signature: e2ee, expectedSigner: account.address, responseBody: RESPONSE }),
    ).toEqual({ ok: false, reason: 'malformed' })
  })
})
