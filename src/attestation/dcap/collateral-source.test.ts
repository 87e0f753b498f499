import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseCollateral } from './collateral.ts'
import { CollateralSource, rawJsonMember } from './collateral-source.ts'
import { verifyQuote } from './verify-quote.ts'

const VECTORS = fileURLToPath(new URL('../../../test/fixtures/tee-vectors/', import.meta.url))
const quote = new Uint8Array(readFileSync(`${VECTORS}/intel-dcap/tdx_quote.bin`))
const collateral = parseCollateral(JSON.parse(readFileSync(`${VECTORS}/intel-dcap/tdx_quote_collateral.json`, 'utf8')))
const AT = new Date('2025-07-04T00:00:00Z')

/**
 * A PCCS on 127.0.0.1 serving the vendored collateral in the Intel PCS v4 shape: DER PCK CRL, JSON bodies with the
 * signed object verbatim, URL-encoded PEM issuer chains in headers, and the root CA CRL as hex (PCCS `rootcacrl`).
 */
const requests: string[] = []
let mode: 'ok' | 'redirect' = 'ok'
let server: Server
let baseUrl: string
const cacheDir = mkdtempSync(join(tmpdir(), 'zg-collateral-'))

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req.url ?? '')
    if (mode === 'redirect') return void res.writeHead(302, { location: 'http://example.invalid/' }).end()
    const url = new URL(req.url ?? '/', 'http://x')
    const send = (headers: Record<string, string>, body: string | Buffer) => void res.writeHead(200, headers).end(body)
    const chain = (pem: string) => encodeURIComponent(pem)
    if (url.pathname === '/sgx/certification/v4/pckcrl' && url.searchParams.get('ca') === 'platform') {
      return send(
        { 'SGX-PCK-CRL-Issuer-Chain': chain(collateral.pck_crl_issuer_chain) },
        Buffer.from(collateral.pck_crl as string, 'hex'),
      )
    }
    if (url.pathname === '/tdx/certification/v4/tcb' && url.searchParams.get('fmspc') === 'B0C06F000000') {
      return send(
        { 'TCB-Info-Issuer-Chain': chain(collateral.tcb_info_issuer_chain) },
        `{"tcbInfo":${collateral.tcb_info},"signature":"${collateral.tcb_info_signature}"}`,
      )
    }
    if (url.pathname === '/tdx/certification/v4/qe/identity') {
      return send(
        { 'SGX-Enclave-Identity-Issuer-Chain': chain(collateral.qe_identity_issuer_chain) },
        `{"enclaveIdentity":${collateral.qe_identity},"signature":"${collateral.qe_identity_signature}"}`,
      )
    }
    if (url.pathname === '/sgx/certification/v4/rootcacrl') return send({}, collateral.root_ca_crl as string)
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
  rmSync(cacheDir, { recursive: true, force: true })
})

describe('CollateralSource', () => {
  it('fetches PCS-shaped collateral for the quote’s FMSPC and CA; it verifies the quote', async () => {
    const source = new CollateralSource({ baseUrl: `${baseUrl}/`, cacheDir })
    const got = await source.forQuote(quote, AT)
    expect(got.source).toBe('network')
    expect(got.platform).toEqual({ tee: 'tdx', fmspc: 'B0C06F000000', ca: 'platform' })
    expect(requests.sort()).toEqual([
      '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
      '/sgx/certification/v4/rootcacrl',
      '/tdx/certification/v4/qe/identity?update=standard',
      '/tdx/certification/v4/tcb?fmspc=B0C06F000000',
    ])
    expect(got.collateral.tcb_info).toBe(collateral.tcb_info) // byte-exact, or its signature would fail
    expect(verifyQuote(quote, got.collateral, AT).status).toBe('UpToDate')
    expect((await source.forQuote(quote, AT)).source).toBe('memory')
  })

  it('serves the disk cache while valid, and the last good copy when the server is gone', async () => {
    mode = 'redirect' // any network answer now fails: redirects are refused
    requests.length = 0
    const source = new CollateralSource({ baseUrl, cacheDir })
    expect((await source.forQuote(quote, AT)).source).toBe('disk')
    expect(requests).toEqual([])
    // Past the earliest nextUpdate a refresh is tried; it fails, and the stale copy comes back for the verifier to judge.
    const later = new Date('2025-07-20T00:00:00Z')
    const stale = await source.forQuote(quote, later)
    expect(stale.source).toBe('stale-cache')
    expect(requests.length).toBeGreaterThan(0)
    expect(() => verifyQuote(quote, stale.collateral, later)).toThrow('TCBInfo expired')
    mode = 'ok'
  })

  it('fails without a cache when the server cannot answer; caps response size', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'zg-collateral-'))
    try {
      const down = () => Promise.reject(new TypeError('fetch failed'))
      await expect(new CollateralSource({ baseUrl, cacheDir: empty, fetch: down }).forQuote(quote, AT)).rejects.toThrow(
        'fetch failed',
      )
      await expect(new CollateralSource({ baseUrl, maxBytes: 100 }).forQuote(quote, AT)).rejects.toThrow(
        /larger than 100 bytes/,
      )
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })

  it('goes through the injected fetch with no redirects and a timeout', async () => {
    const seen: { url: string; redirect: string; signal: boolean }[] = []
    const source = new CollateralSource({
      baseUrl,
      fetch: (url, init) => {
        seen.push({ url, redirect: init.redirect, signal: init.signal instanceof AbortSignal })
        return fetch(url, init)
      },
    })
    expect((await source.forQuote(quote, AT)).source).toBe('network')
    expect(seen).toHaveLength(4)
    expect(seen.every((s) => s.redirect === 'error' && s.signal)).toBe(true)
  })
})

describe('rawJsonMember', () => {
  it('returns the member’s text verbatim, braces inside strings included', () => {
    const inner = '{ "a" : "}{\\"", "b": {"c": [1, {"d": 2}]} }'
    expect(rawJsonMember(`{"tcbInfo": ${inner}, "signature":"ab"}`, 'tcbInfo')).toBe(inner)
    expect(rawJsonMember(`{"signature":"ab","tcbInfo":${inner}}`, 'tcbInfo')).toBe(inner)
    expect(() => rawJsonMember('{"signature":"ab"}', 'tcbInfo')).toThrow(/no tcbInfo/)
    expect(() => rawJsonMember('{"tcbInfo":{"a":1', 'tcbInfo')).toThrow(/truncated/)
  })
})
