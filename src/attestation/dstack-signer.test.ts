import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, type Hex, keccak256, recoverAddress, toHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import { DSTACK_SOCKET_PATHS, DstackAgentError, resolveDstackEndpoint } from './dstack-agent.ts'
import { createDstackSigner } from './dstack-signer.ts'
import { decodeReportData, encodeReportData, reportDataFieldBytes } from './report-data.ts'
import { verifyResponseSignature } from './response-signature.ts'
import { type DstackAttestationReport, InvalidAttestationNonceError, signChat } from './tee-signer.ts'

/**
 * A fake dstack guest agent (test double): the v0 HTTP API shape of Dstack-TEE/dstack `sdk/curl/api.md` — POST
 * /GetKey {path, purpose} → {key hex, signature_chain}, POST /GetQuote {report_data hex} → {quote, event_log,
 * report_data hex, vm_config}, POST /Info → {tcb_info string, …}. The quote it returns is not a real quote.
 */
const KEY = `${'7e'.repeat(31)}01`
const signerAddress = privateKeyToAccount(`0x${KEY}`).address
const TCB_INFO = '{"mrtd":"00","app_compose":"{}","event_log":[]}'
const VM_CONFIG = '{"spec_version":1,"cpu_count":4}'

type Mode = 'ok' | 'error-body' | 'http-500' | 'bad-key' | 'wrong-report-data' | 'no-info' | 'no-report-data'
let mode: Mode = 'ok'
const calls: { method: string; body: Record<string, unknown> }[] = []

function agent(req: IncomingMessage, res: ServerResponse) {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const method = (req.url ?? '').replace(/^\//, '')
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
    calls.push({ method, body })
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(json))
    }
    if (mode === 'http-500') return send(500, { error: 'boom' })
    if (mode === 'error-body') return send(200, { error: 'TDX not available' })
    switch (method) {
      case 'GetKey':
        return send(200, { key: mode === 'bad-key' ? 'abcd' : KEY, signature_chain: ['aa', 'bb'] })
      case 'GetQuote': {
        const reportData = String(body.report_data)
        const echoed = mode === 'wrong-report-data' ? '11'.repeat(64) : reportData.padEnd(128, '0')
        return send(200, {
          quote: `04000200${'00'.repeat(564)}${echoed}`,
          event_log: '[{"imr":3,"event":"compose-hash"}]',
          ...(mode === 'no-report-data' ? {} : { report_data: echoed }),
          vm_config: VM_CONFIG,
        })
      }
      case 'Info':
        return mode === 'no-info' ? send(404, 'no route') : send(200, { app_id: 'ab', tcb_info: TCB_INFO })
      default:
        return send(404, { error: `no method ${method}` })
    }
  })
}

const dir = await mkdtemp(join(tmpdir(), 'zg-dstack-'))
const socketPath = join(dir, 'dstack.sock')
const listen = (server: Server, target: number | string) =>
  new Promise<void>((resolve) => {
    if (typeof target === 'number') server.listen(target, '127.0.0.1', resolve)
    else server.listen(target, resolve)
  })
const tcp = createServer(agent)
const unix = createServer(agent)
await listen(tcp, 0)
await listen(unix, socketPath)
const url = `http://127.0.0.1:${(tcp.address() as AddressInfo).port}`

afterAll(async () => {
  await Promise.all([tcp, unix].map((s) => new Promise((r) => s.close(r))))
  await rm(dir, { recursive: true, force: true })
})
beforeEach(() => {
  mode = 'ok'
  calls.length = 0
})

const quotes = () => calls.filter((c) => c.method === 'GetQuote')

describe('createDstackSigner against a fake dstack agent', () => {
  it('derives the signer with GetKey {path: "/", purpose: ""} (0G broker) and signs with it', async () => {
    const signer = await createDstackSigner({ endpoint: url })
    expect(signer.kind).toBe('dstack')
    expect(signer.address).toBe(signerAddress)
    expect(calls[0]).toEqual({ method: 'GetKey', body: { path: '/', purpose: '' } })
    const sig = await signChat(signer, '{"q":1}', '{"a":2}')
    expect(
      await verifyResponseSignature({
        signature: sig,
        expectedSigner: signerAddress,
        requestBody: '{"q":1}',
        responseBody: '{"a":2}',
      }),
    ).toEqual({ ok: true })
    const digest = keccak256(toHex('artifact tags'))
    expect(await recoverAddress({ hash: digest, signature: await signer.signDigest(digest) })).toBe(signerAddress)

    await createDstackSigner({ endpoint: url, keyPath: '/zg/tee-signer' })
    expect(calls.at(-1)).toEqual({ method: 'GetKey', body: { path: '/zg/tee-signer', purpose: '' } })
  })

  it('without a nonce: the legacy ASCII-address report_data, quoted once and reused', async () => {
    const signer = await createDstackSigner({ endpoint: url })
    const report = (await signer.attestation()) as DstackAttestationReport
    const sent = quotes()[0]?.body.report_data as string
    expect(sent).toMatch(/^[0-9a-f]{128}$/)
    const sentBytes = reportDataFieldBytes(sent)
    expect(Buffer.from(sentBytes.subarray(0, 42)).toString('ascii')).toBe(signerAddress)
    expect(sentBytes.subarray(42).every((b) => b === 0)).toBe(true)
    expect(report).toEqual({
      tee: 'intel-tdx',
      quote: `04000200${'00'.repeat(564)}${sent}`,
      event_log: '[{"imr":3,"event":"compose-hash"}]',
      report_data: Buffer.from(sentBytes).toString('base64'),
      vm_config: VM_CONFIG,
      tcb_info: TCB_INFO,
      signing_address: signerAddress,
      signing_algo: 'ecdsa',
      report_data_layout: 'legacy-ascii-address',
    })
    // What a 0G SDK verifier does: base64 → utf8 → strip NULs → compare with teeSignerAddress.
    expect(Buffer.from(report.report_data, 'base64').toString('utf8').replace(/\0+$/, '')).toBe(signerAddress)
    expect(decodeReportData(reportDataFieldBytes(report.report_data))).toEqual({
      layout: 'legacy-ascii-address',
      signer: signerAddress,
    })
    expect(await signer.attestation()).toBe(report)
    expect(quotes()).toHaveLength(1)
  })

  it('with a nonce: signer ‖ 0^12 ‖ nonce, fresh quote per call', async () => {
    const signer = await createDstackSigner({ endpoint: url })
    const nonce: Hex = `0x${'c3'.repeat(32)}`
    const report = (await signer.attestation(nonce)) as DstackAttestationReport
    const expected = encodeReportData('signer-nonce', signerAddress, nonce)
    expect(quotes()[0]?.body).toEqual({ report_data: bytesToHex(expected).slice(2) })
    expect(bytesToHex(expected)).toBe(`${signerAddress.toLowerCase()}${'00'.repeat(12)}${'c3'.repeat(32)}`)
    expect(report).toMatchObject({ report_data_layout: 'signer-nonce', nonce, signing_address: signerAddress })
    expect(decodeReportData(reportDataFieldBytes(report.report_data))).toEqual({
      layout: 'signer-nonce',
      signer: signerAddress,
      nonce,
    })
    await signer.attestation(`0x${'d4'.repeat(32)}`)
    expect(quotes()).toHaveLength(2)
    await expect(signer.attestation('0xabc' as Hex)).rejects.toBeInstanceOf(InvalidAttestationNonceError)
  })

  it('talks over a unix socket too', async () => {
    const signer = await createDstackSigner({ endpoint: socketPath })
    expect(signer.address).toBe(signerAddress)
    expect(await signer.attestation()).toMatchObject({ tee: 'intel-tdx', report_data_layout: 'legacy-ascii-address' })
  })

  it('finds the endpoint: explicit, then DSTACK_SIMULATOR_ENDPOINT, then the dstack socket', async () => {
    expect(resolveDstackEndpoint('/x.sock', { DSTACK_SIMULATOR_ENDPOINT: url })).toBe('/x.sock')
    expect(resolveDstackEndpoint(undefined, { DSTACK_SIMULATOR_ENDPOINT: url })).toBe(url)
    expect(DSTACK_SOCKET_PATHS).toContain(resolveDstackEndpoint(undefined, {}))
    const saved = process.env.DSTACK_SIMULATOR_ENDPOINT
    process.env.DSTACK_SIMULATOR_ENDPOINT = url
    try {
      expect((await createDstackSigner()).address).toBe(signerAddress)
    } finally {
      if (saved === undefined) delete process.env.DSTACK_SIMULATOR_ENDPOINT
      else process.env.DSTACK_SIMULATOR_ENDPOINT = saved
    }
  })

  it('omits tcb_info when Info fails, and accepts an answer without report_data', async () => {
    const signer = await createDstackSigner({ endpoint: url })
    mode = 'no-info'
    const report = await signer.attestation(`0x${'01'.repeat(32)}`)
    expect(report).not.toHaveProperty('tcb_info')
    mode = 'ok'
    expect(await signer.attestation(`0x${'02'.repeat(32)}`)).toMatchObject({ tcb_info: TCB_INFO })
    mode = 'no-report-data'
    const fresh = await createDstackSigner({ endpoint: url })
    expect(await fresh.attestation()).toMatchObject({ report_data_layout: 'legacy-ascii-address' })
  })

  it('fails with DstackAgentError on agent errors, bad keys, foreign report_data and no agent', async () => {
    const agentError = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e,
      )
    mode = 'error-body'
    const e1 = await agentError(createDstackSigner({ endpoint: url }))
    expect(e1).toBeInstanceOf(DstackAgentError)
    expect(e1).toMatchObject({ method: 'GetKey', status: 200, message: expect.stringContaining('TDX not available') })
    mode = 'http-500'
    expect(await agentError(createDstackSigner({ endpoint: url }))).toMatchObject({
      name: 'DstackAgentError',
      status: 500,
    })
    mode = 'bad-key'
    expect(await agentError(createDstackSigner({ endpoint: url }))).toBeInstanceOf(DstackAgentError)

    mode = 'ok'
    const signer = await createDstackSigner({ endpoint: url })
    mode = 'wrong-report-data'
    expect(await agentError(signer.attestation())).toMatchObject({ name: 'DstackAgentError', method: 'GetQuote' })
    // A failed legacy quote is not cached: the next call asks again.
    mode = 'ok'
    expect(await signer.attestation()).toMatchObject({ report_data_layout: 'legacy-ascii-address' })

    expect(await agentError(createDstackSigner({ endpoint: join(dir, 'missing.sock') }))).toBeInstanceOf(
      DstackAgentError,
    )
    expect(await agentError(createDstackSigner({ endpoint: 'http://127.0.0.1:1', timeoutMs: 2000 }))).toBeInstanceOf(
      DstackAgentError,
    )
  })
})
