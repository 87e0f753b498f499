import { existsSync, readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Quote } from '@phala/dcap-qvl'
import { type Address, bytesToHex, type Hex } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createProviderAgent } from '../providers/provider-agent.ts'
import { type Collateral, CollateralError, parseCollateral } from './dcap/collateral.ts'
import { QuoteVerifier } from './dcap/quote-verifier.ts'
import { DEFAULT_TCB_POLICY } from './dcap/tcb-policy.ts'
import type { QuoteVerification } from './dcap/verify-quote.ts'
import { encodeReportData } from './report-data.ts'
import {
  type AttestationRecord,
  recordHashOf,
  SignerAttestations,
  type SignerAttestationsOptions,
} from './signer-attestation.ts'
import { INSECURE_DEV_SIGNER_MESSAGE } from './tee-signer.ts'

const VECTORS = fileURLToPath(new URL('../../test/fixtures/tee-vectors/', import.meta.url))
/** The AGPL NEAR capture is not vendored (test/fixtures/tee-vectors/README.md): read from ../shared when present. */
const SHARED = process.env.ZG_TEE_VECTORS ?? fileURLToPath(new URL('../../../shared/tee-vectors/', import.meta.url))
const AGPL_COLLATERAL = `${SHARED}/captured-neardirect-2026-06-29/intel_collateral_fmspc_90c06f000000.json`
const HAVE_AGPL = existsSync(AGPL_COLLATERAL)

const expected = JSON.parse(readFileSync(`${VECTORS}/expected.json`, 'utf8'))
const brokerReport = readFileSync(`${VECTORS}/0g/broker_attestation_report.json`, 'utf8')
const llmReport = readFileSync(`${VECTORS}/0g/llm_attestation_report.json`, 'utf8')
const BROKER_SIGNER = '0xDC1A4da6BdCD90c20d7FF53a6cDc11fBf0E2303C' as Address
const LLM_SIGNER = expected['0g/llm_attestation_report.json'].signing_address as Address
const DEV_SIGNER = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address
const PROVIDER = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address
/** The capture time of the AGPL collateral (expected.json `dcap_with`). */
const CAPTURE = new Date('2026-06-29T02:06:37Z')

type Route = (req: IncomingMessage, res: ServerResponse) => void
const json =
  (body: string | object): Route =>
  (_req, res) => {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(typeof body === 'string' ? body : JSON.stringify(body))
  }
const notFound: Route = (_req, res) => res.writeHead(404).end('{"error":"not found"}')

/** Each provider is a path prefix on one local server: `{prefix}/v1/proxy/attestation/report` and `{prefix}/v1/quote`. */
const providers: Record<string, { report: Route; quote: Route }> = {
  broker: { report: notFound, quote: json(brokerReport) },
  llm: { report: json(llmReport), quote: notFound },
  redirect: {
    report: (_req, res) => res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data' }).end(),
    quote: json(brokerReport),
  },
  oversized: {
    report: notFound,
    quote: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"quote":"')
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer)
        res.write('ab'.repeat(8192))
      }, 1)
    },
  },
  slow: { report: () => {}, quote: json(brokerReport) },
  garbage: { report: (_req, res) => res.writeHead(200).end('{"quote": 0x'), quote: notFound },
  unknown: { report: json({ hello: 'world' }), quote: notFound },
  dev: {
    report: (req, res) =>
      json({
        tee: 'none',
        insecure: true,
        signing_address: DEV_SIGNER,
        signing_algo: 'ecdsa',
        quote: null,
        message: INSECURE_DEV_SIGNER_MESSAGE,
        nonce: new URL(req.url!, 'http://x').searchParams.get('nonce'),
      })(req, res),
    quote: notFound,
  },
  // The broker's quote served in our provider node's shape (tee-signer.ts: dstack fields plus signing_address).
  node: { report: json({ ...JSON.parse(brokerReport), signing_address: BROKER_SIGNER }), quote: notFound },
  delayed: {
    report: (req, res) => setTimeout(() => providers.dev!.report(req, res), 100),
    quote: notFound,
  },
}
const hits: { path: string; query: URLSearchParams }[] = []
const hitsOf = (name: string) => hits.filter((h) => h.path.startsWith(`/${name}/`))

let server: Server
let base: string
const agent = createProviderAgent({ allowPrivate: true })
const quotes = new QuoteVerifier()
const services: SignerAttestations[] = []

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x')
    hits.push({ path: url.pathname, query: url.searchParams })
    const [, name, ...rest] = url.pathname.split('/')
    const routes = providers[name ?? '']
    const path = `/${rest.join('/')}`
    if (routes && path === '/v1/proxy/attestation/report') return routes.report(req, res)
    if (routes && path === '/v1/quote') return routes.quote(req, res)
    res.writeHead(404).end()
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((done) => server.close(done))
  await Promise.all(services.map((s) => s.close()))
  await quotes.close()
  await agent.close()
})

const agplCollateral = (): Collateral => parseCollateral(JSON.parse(readFileSync(AGPL_COLLATERAL, 'utf8')))
const offline = async (): Promise<Collateral> => {
  throw new CollateralError('collateral unavailable (offline test)')
}

function service(opts: Partial<SignerAttestationsOptions> = {}): SignerAttestations {
  const s = new SignerAttestations({ dispatcher: agent, quotes, collateral: offline, now: () => CAPTURE, ...opts })
  services.push(s)
  return s
}
const entry = (name: string, teeSignerAddress: Address) => ({
  provider: PROVIDER,
  url: `${base}/${name}`,
  teeSignerAddress,
})

function expectSealed(record: AttestationRecord) {
  expect(record.recordHash).toBe(recordHashOf(record))
  expect(record.nonce).toMatch(/^0x[0-9a-f]{64}$/)
}

describe('SignerAttestations: fetching the report', () => {
  it('asks the vllm-proxy path with a fresh nonce and our signer, then falls back to /v1/quote', async () => {
    const record = await service().attest(entry('broker', BROKER_SIGNER))
    const [report, quote] = hitsOf('broker')
    expect(report?.path).toBe('/broker/v1/proxy/attestation/report')
    expect(report?.query.get('nonce')).toBe(record.nonce)
    expect(report?.query.get('signing_address')).toBe(BROKER_SIGNER)
    expect(quote?.path).toBe('/broker/v1/quote')
    expect(record).toMatchObject({ source: 'quote', format: 'dstack-quote', tee: 'intel-tdx' })
    expectSealed(record)
  })

  it('a dev signer that says it has no TEE: level null, with its message', async () => {
    const record = await service().attest(entry('dev', DEV_SIGNER))
    expect(record).toMatchObject({
      level: null,
      tee: 'none',
      fresh: false,
      quoteSha256: null,
      source: 'attestation-report',
    })
    expect(record.reasons).toEqual([`no TEE: ${INSECURE_DEV_SIGNER_MESSAGE}`])
    expectSealed(record)
  })

  it('refuses a redirect, and does not fall back to /v1/quote after one', async () => {
    const record = await service().attest(entry('redirect', BROKER_SIGNER))
    expect(record.level).toBeNull()
    expect(record.reasons).toEqual([
      expect.stringMatching(
        /^no attestation report: .*redirect 302 to http:\/\/169\.254\.169\.254\/latest\/meta-data refused$/,
      ),
    ])
    expect(hitsOf('redirect').map((h) => h.path)).toEqual(['/redirect/v1/proxy/attestation/report'])
  })

  it('caps the report size while reading', async () => {
    const record = await service({ maxReportBytes: 64 * 1024 }).attest(entry('oversized', BROKER_SIGNER))
    expect(record.level).toBeNull()
    expect(record.reasons).toEqual([expect.stringMatching(/^no attestation report: .*answer over 65536 bytes$/)])
  })

  it('gives up on a provider that does not answer', async () => {
    const started = Date.now()
    const record = await service({ timeoutMs: 300 }).attest(entry('slow', BROKER_SIGNER))
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(record.level).toBeNull()
    expect(record.reasons).toEqual([expect.stringMatching(/^no attestation report: .*no answer within 300 ms$/)])
  })

  it('refuses garbage and unknown shapes, saying why', async () => {
    const garbage = await service().attest(entry('garbage', BROKER_SIGNER))
    expect(garbage.reasons).toEqual([expect.stringMatching(/^no attestation report: .*the answer is not JSON$/)])
    const unknown = await service().attest(entry('unknown', BROKER_SIGNER))
    expect(unknown.reasons).toEqual(['unreadable attestation report: unknown attestation report shape (keys: hello)'])
    expect([garbage.level, unknown.level]).toEqual([null, null])
  })

  it('refuses a report naming another signer than the on-chain one, before any DCAP work', async () => {
    const record = await service().attest(entry('llm', DEV_SIGNER))
    expect(record.level).toBeNull()
    expect(record.reasons).toEqual([`the report names signer ${LLM_SIGNER}, not the on-chain ${DEV_SIGNER}`])
  })

  it('without collateral the quote is not verified: level null, nothing read from JSON beside the quote', async () => {
    const record = await service().attest(entry('broker', BROKER_SIGNER))
    expect(record.level).toBeNull()
    expect(record.reasons).toEqual(['DCAP: collateral unavailable (offline test)'])
    expect(record).toMatchObject({ tcbStatus: null, mrTd: null, rtmrs: null, layout: null })
    expect(record.quoteSha256).toMatch(/^0x[0-9a-f]{64}$/)
  })
})

describe('SignerAttestations: cache', () => {
  it('keeps a record until its TTL (failures for failureTtlMs), known() answers from it, then it expires', async () => {
    let now = CAPTURE.getTime()
    const s = service({ now: () => new Date(now), failureTtlMs: 60_000 })
    const before = hitsOf('dev').length
    expect(s.known(PROVIDER, DEV_SIGNER)).toBeUndefined()
    const first = await s.attest(entry('dev', DEV_SIGNER))
    expect(first.expiresAt - first.verifiedAt).toBe(60_000)
    now += 59_000
    expect(await s.attest(entry('dev', DEV_SIGNER))).toBe(first)
    expect(s.known(PROVIDER, DEV_SIGNER)).toBe(first)
    expect(hitsOf('dev').length - before).toBe(1)
    now += 2_000
    expect(s.known(PROVIDER, DEV_SIGNER)).toBeUndefined()
    const second = await s.attest(entry('dev', DEV_SIGNER))
    expect(second).not.toBe(first)
    expect(second.nonce).not.toBe(first.nonce)
    expect(hitsOf('dev').length - before).toBe(2)
  })

  it('concurrent attests of one provider+signer share one run', async () => {
    const s = service()
    const records = await Promise.all(Array.from({ length: 5 }, () => s.attest(entry('delayed', DEV_SIGNER))))
    expect(hitsOf('delayed')).toHaveLength(1)
    for (const r of records) expect(r).toBe(records[0])
  })

  it('recordHash covers every field', async () => {
    const record = await service().attest(entry('dev', DEV_SIGNER))
    expect(recordHashOf({ ...record, fresh: true })).not.toBe(record.recordHash)
    expect(recordHashOf({ ...record, reasons: [] })).not.toBe(record.recordHash)
  })
})

/** Without the AGPL collateral: say what did not run, and check what the vendored files alone support. */
async function vendoredOnly(test: string | undefined): Promise<void> {
  console.log(`NOT RUN: ${test} (${AGPL_COLLATERAL} absent); checked instead: no collateral, no level`)
  for (const [name, signer] of [
    ['broker', BROKER_SIGNER],
    ['llm', LLM_SIGNER],
  ] as const) {
    const record = await service().attest(entry(name, signer))
    expect(record.level).toBeNull()
    expect(record.reasons).toEqual(['DCAP: collateral unavailable (offline test)'])
  }
}

describe('SignerAttestations: DCAP-verified 0G reports (AGPL collateral, at its capture time)', () => {
  // The capture's root CA CRL was issued long before and is past its nextUpdate at the capture time, so the CRL
  // date check is off here (the quote signature chain, TCB and CRL revocation lists are still checked).
  const agpl = (opts: Partial<SignerAttestationsOptions> = {}) =>
    service({ collateral: async () => agplCollateral(), checkCrlDates: false, ...opts })

  it('the broker /v1/quote: L2 but stale (legacy ASCII layout, no nonce), UpToDate, measurements from the quote', async () => {
    if (!HAVE_AGPL) return vendoredOnly(expect.getState().currentTestName)
    const record = await agpl().attest(entry('broker', BROKER_SIGNER))
    expect(record).toMatchObject({
      level: 'L2',
      fresh: false,
      layout: 'legacy-ascii-address',
      format: 'dstack-quote',
      tcbStatus: expected['0g/broker_attestation_report.json'].dcap_status,
      advisories: [],
    })
    expect(record.reasons).toEqual([
      'L2-stale: the legacy-ascii-address layout has no nonce, so the quote may be a replayed startup one',
    ])
    const tcbInfo = JSON.parse(JSON.parse(brokerReport).tcb_info)
    expect(record.mrTd).toBe(`0x${tcbInfo.mrtd}`)
    expect(record.rtmrs).toEqual([tcbInfo.rtmr0, tcbInfo.rtmr1, tcbInfo.rtmr2, tcbInfo.rtmr3].map((r) => `0x${r}`))
    expect(record.composeHash).toBe(`0x${tcbInfo.compose_hash}`)
    expect(record.gpus).toBeUndefined()
    expectSealed(record)
  })

  it('the broker under a measurement policy it fails: still L2-stale, the allowlist named', async () => {
    if (!HAVE_AGPL) return vendoredOnly(expect.getState().currentTestName)
    const record = await agpl({ measurementPolicy: { composeHashes: ['00'.repeat(32)] } }).attest(
      entry('broker', BROKER_SIGNER),
    )
    expect(record.level).toBe('L2')
    expect(record.reasons).toContainEqual(
      expect.stringMatching(/^L3: composeHashes: [0-9a-f]{64} is not in the allowlist$/),
    )
  })

  it('the LLM node report: its nonce is fixed in the file, so with our fresh nonce it is a replay, never L2', async () => {
    if (!HAVE_AGPL) return vendoredOnly(expect.getState().currentTestName)
    const spec = expected['0g/llm_attestation_report.json']
    const strict = await agpl().attest(entry('llm', LLM_SIGNER))
    expect(strict).toMatchObject({
      level: null,
      fresh: false,
      layout: 'signer-nonce',
      format: 'vllm-proxy',
      tcbStatus: spec.dcap_status,
      advisories: spec.advisory_ids,
      gpus: 1,
    })
    const replay = `report_data binds nonce 0x${spec.request_nonce}, not ours: a replayed report`
    expect(strict.reasons).toEqual([
      `TCB OutOfDate rejected: advisories not allow-listed: ${spec.advisory_ids.join(', ')}`,
      replay,
    ])
    // With every advisory allow-listed the TCB passes; the replayed nonce alone still keeps it below L2.
    const lenient = await agpl({
      tcbPolicy: { ...DEFAULT_TCB_POLICY, allowedAdvisories: spec.advisory_ids },
    }).attest(entry('llm', LLM_SIGNER))
    expect(lenient.level).toBeNull()
    expect(lenient.reasons).toEqual([replay])
  })

  it('with the CRL date check on, the stale root CRL of the capture fails DCAP', async () => {
    if (!HAVE_AGPL) return vendoredOnly(expect.getState().currentTestName)
    const record = await agpl({ checkCrlDates: true }).attest(entry('broker', BROKER_SIGNER))
    expect(record.level).toBeNull()
    expect(record.reasons).toEqual([expect.stringMatching(/^DCAP: CRL expired: root_ca_crl/)])
  })

  it('an L2 record lives ttlMs', async () => {
    if (!HAVE_AGPL) return vendoredOnly(expect.getState().currentTestName)
    const record = await agpl({ ttlMs: 10 * 60_000 }).attest(entry('broker', BROKER_SIGNER))
    expect(record.expiresAt - record.verifiedAt).toBe(10 * 60_000)
  })
})

/**
 * No real quote binds a nonce we choose, so to drive the fresh path the DCAP verdict is stood in: the real broker
 * quote's measurements (parsed, not verified) with report_data = signer ‖ the nonce the provider was sent. DCAP
 * itself is exercised above and in dcap/.
 */
function standInVerifier(signer: Address, reportNonce: () => Hex): QuoteVerifier {
  const verify = async (quote: Uint8Array, _c: Collateral, now: Date): Promise<QuoteVerification> => {
    const td = Quote.parse(quote).report.asTd10()!
    const hex = (b: Uint8Array) => bytesToHex(Uint8Array.from(b))
    return {
      status: 'UpToDate',
      advisoryIds: [],
      quoteVersion: 4,
      reportType: 'td10',
      reportData: encodeReportData('signer-nonce', signer, reportNonce()),
      td: {
        mrTd: hex(td.mrTd),
        rtmrs: [hex(td.rtMr0), hex(td.rtMr1), hex(td.rtMr2), hex(td.rtMr3)],
        mrConfigId: hex(td.mrConfigId),
        mrOwner: hex(td.mrOwner),
        mrOwnerConfig: hex(td.mrOwnerConfig),
        mrSeam: hex(td.mrSeam),
        tdAttributes: { raw: '0x0000001000000000', debug: false, septVeDisable: true },
      },
      sgx: undefined,
      crlDatesChecked: true,
      verifiedAt: now.toISOString(),
    }
  }
  return { verify, close: async () => {} } as unknown as QuoteVerifier
}

describe('SignerAttestations: a fresh quote (DCAP verdict stood in)', () => {
  const sentNonce = () => hitsOf('node').at(-1)!.query.get('nonce') as Hex
  const fresh = (opts: Partial<SignerAttestationsOptions> = {}) =>
    service({ quotes: standInVerifier(BROKER_SIGNER, sentNonce), collateral: async () => ({}) as Collateral, ...opts })

  it('binds our nonce: L3 once the event log replays and the compose hash matches (no GPU required)', async () => {
    const record = await fresh().attest(entry('node', BROKER_SIGNER))
    expect(record).toMatchObject({
      level: 'L3',
      fresh: true,
      layout: 'signer-nonce',
      reasons: [],
      source: 'attestation-report',
    })
    expect(record.composeHash).toMatch(/^0x[0-9a-f]{64}$/)
  })

  it('requireGpu: a CPU-only report stops at L2, saying why', async () => {
    const record = await fresh({ requireGpu: true }).attest(entry('node', BROKER_SIGNER))
    expect(record.level).toBe('L2')
    expect(record.reasons).toEqual(['L3: no GPU evidence in the report'])
  })

  it('a debug TD is refused at L2', async () => {
    const base = standInVerifier(BROKER_SIGNER, sentNonce)
    const debug = {
      verify: async (...args: Parameters<QuoteVerifier['verify']>) => {
        const v = await base.verify(...args)
        return { ...v, td: { ...v.td!, tdAttributes: { ...v.td!.tdAttributes, debug: true } } }
      },
      close: async () => {},
    } as unknown as QuoteVerifier
    const record = await fresh({ quotes: debug }).attest(entry('node', BROKER_SIGNER))
    expect(record.level).toBeNull()
    expect(record.reasons).toEqual(['debug TEE: its memory is readable by the host'])
  })
})
