import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { parseCollateral } from './collateral.ts'
import { QuoteVerifier } from './quote-verifier.ts'
import { QuoteVerificationError } from './verify-quote.ts'

const VECTORS = fileURLToPath(new URL('../../../test/fixtures/tee-vectors/', import.meta.url))
const quote = new Uint8Array(readFileSync(`${VECTORS}/intel-dcap/tdx_quote.bin`))
const collateral = parseCollateral(JSON.parse(readFileSync(`${VECTORS}/intel-dcap/tdx_quote_collateral.json`, 'utf8')))
const AT = new Date('2025-07-04T00:00:00Z')

const verifier = new QuoteVerifier()
afterAll(() => verifier.close())

describe('QuoteVerifier (worker thread)', () => {
  it('verifies in the worker, concurrent jobs answered by id', async () => {
    const [ok, expired, ok2] = await Promise.allSettled([
      verifier.verify(quote, collateral, AT),
      verifier.verify(quote, collateral, new Date('2025-08-01T00:00:00Z')),
      verifier.verify(quote, collateral, AT, { checkCrlDates: false }),
    ])
    expect(ok).toMatchObject({ status: 'fulfilled', value: { status: 'UpToDate', crlDatesChecked: true } })
    expect(ok.status === 'fulfilled' && ok.value.reportData).toBeInstanceOf(Uint8Array)
    expect(ok2).toMatchObject({ status: 'fulfilled', value: { crlDatesChecked: false } })
    expect(expired.status).toBe('rejected')
    const err = (expired as PromiseRejectedResult).reason
    expect(err).toBeInstanceOf(QuoteVerificationError)
    expect(err).toMatchObject({ message: 'TCBInfo expired', stage: 'quote' })
  })

  it('carries the CRL stage across the thread boundary', async () => {
    await expect(verifier.verify(quote, collateral, new Date('2025-07-19T10:10:00Z'))).rejects.toMatchObject({
      name: 'QuoteVerificationError',
      stage: 'crl',
    })
  })

  it('times a job out, replaces the worker, and refuses work once closed', async () => {
    const slow = new QuoteVerifier({ timeoutMs: 1 })
    await expect(slow.verify(quote, collateral, AT)).rejects.toThrow(/timed out after 1 ms/)
    await slow.close()
    await expect(slow.verify(quote, collateral, AT)).rejects.toThrow(/closed/)
    // The shared verifier is unaffected and still answers.
    await expect(verifier.verify(quote, collateral, AT)).resolves.toMatchObject({ status: 'UpToDate' })
  })
})
