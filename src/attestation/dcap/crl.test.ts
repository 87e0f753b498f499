import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { collateralBytes, collateralWindow, parseCollateral } from './collateral.ts'
import { CrlError, checkCollateralCrls, parseCrl } from './crl.ts'
import { readDer, readDerTime } from './der.ts'

const VECTORS = fileURLToPath(new URL('../../../test/fixtures/tee-vectors/', import.meta.url))
const collateral = parseCollateral(JSON.parse(readFileSync(`${VECTORS}/intel-dcap/tdx_quote_collateral.json`, 'utf8')))

describe('parseCrl', () => {
  it('reads thisUpdate/nextUpdate of the vendored Intel CRLs (dates as openssl crl prints them)', () => {
    const root = parseCrl(collateralBytes(collateral.root_ca_crl))
    expect(root.thisUpdate.toISOString()).toBe('2025-03-20T11:21:57.000Z')
    expect(root.nextUpdate?.toISOString()).toBe('2026-04-03T11:21:57.000Z')
    const pck = parseCrl(collateralBytes(collateral.pck_crl))
    expect(pck.thisUpdate.toISOString()).toBe('2025-06-19T10:00:35.000Z')
    expect(pck.nextUpdate?.toISOString()).toBe('2025-07-19T10:00:35.000Z')
    expect(pck.signature[0]).toBe(0x30) // a DER ECDSA-Sig-Value
  })

  it('rejects what is not a CRL', () => {
    expect(() => parseCrl(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]))).toThrow(CrlError)
    expect(() => parseCrl(collateralBytes(collateral.pck_crl).subarray(0, 100))).toThrow(CrlError)
    expect(() => parseCrl(new Uint8Array())).toThrow(CrlError)
  })

  it('reads both X.509 time forms', () => {
    const time = (tag: number, text: string) => {
      const bytes = new Uint8Array([tag, text.length, ...Buffer.from(text)])
      return readDerTime(bytes, readDer(bytes, 0)).toISOString()
    }
    expect(time(0x17, '491231235959Z')).toBe('2049-12-31T23:59:59.000Z')
    expect(time(0x17, '500101000000Z')).toBe('1950-01-01T00:00:00.000Z')
    expect(time(0x18, '20260403112157Z')).toBe('2026-04-03T11:21:57.000Z')
  })
})

describe('checkCollateralCrls', () => {
  it('accepts inside both CRL windows, rejects before thisUpdate and after nextUpdate', () => {
    expect(() => checkCollateralCrls(collateral, new Date('2025-07-04T00:00:00Z'))).not.toThrow()
    expect(() => checkCollateralCrls(collateral, new Date('2025-06-19T10:00:00Z'))).toThrow(
      /^CRL not yet valid: pck_crl thisUpdate 2025-06-19T10:00:35.000Z/,
    )
    expect(() => checkCollateralCrls(collateral, new Date('2025-07-19T10:00:36Z'))).toThrow(/^CRL expired: pck_crl/)
    expect(() => checkCollateralCrls(collateral, new Date('2026-04-04T00:00:00Z'))).toThrow(/^CRL expired: root_ca_crl/)
  })

  it('rejects a PCK CRL signed by another key than the issuer chain names', () => {
    // The root CRL in the PCK CRL's place: a real Intel CRL, but not signed by the PCK CA.
    const swapped = { ...collateral, pck_crl: collateral.root_ca_crl }
    expect(() => checkCollateralCrls(swapped, new Date('2025-07-04T00:00:00Z'))).toThrow(/^CRL signature is invalid/)
  })
})

describe('collateralWindow', () => {
  it('is the latest issue date to the earliest nextUpdate of TCB info, QE identity and CRLs', () => {
    expect(collateralWindow(collateral)).toEqual({
      notBefore: new Date('2025-06-19T10:32:27Z'),
      notAfter: new Date('2025-07-19T10:00:35Z'),
    })
  })
})
