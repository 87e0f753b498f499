/**
 * The request log of `zg-gateway dev --log-level debug`, run as a process: stderr is JSON lines only, one request
 * line per request id with its fields, and no secret anywhere (API key, admin key, wallet key, session tokens).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { DEV_WALLET_INDEX } from '../src/devnet/dev-stack.ts'

const API_KEY = 'sk-zg-log-test-0123456789'
const ADMIN_KEY = 'sk-zg-log-admin-9876543210'

let proc: ChildProcess
let dataDir: string
let stderr = ''
let base: string

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'zg-log-'))
  proc = spawn(
    process.execPath,
    ['bin/zg-gateway.js', 'dev', '--port', '0', '--chain-port', '0', '--data-dir', dataDir, '--log-level', 'debug'],
    {
      env: { PATH: process.env.PATH ?? '', ZG_DEV_API_KEY: API_KEY, ZG_DEV_ADMIN_KEY: ADMIN_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  proc.stderr!.on('data', (d) => {
    stderr += d
  })
  let stdout = ''
  base = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      stdout += d
      const m = stdout.match(/^ready: (\S+)/m)
      if (m) resolve(m[1]!)
    })
    proc.once('exit', (code) => reject(new Error(`dev exited ${code}: ${stdout}${stderr}`)))
  })
}, 120_000)

afterAll(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r))
    proc.kill('SIGTERM')
    await exited
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
})

it('writes one JSON request line per request, with its fields and without secrets', async () => {
  const ids: string[] = []
  const chat = async (i: number, opts: { model?: string; key?: string } = {}) => {
    const stream = i % 2 === 0
    const res = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${opts.key ?? API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: opts.model ?? DEV_CHAT_MODEL,
        messages: [{ role: 'user', content: `line ${i}` }],
        max_tokens: 6,
        stream,
      }),
    })
    await res.text()
    ids.push(res.headers.get('x-request-id')!)
    return res.status
  }
  for (let i = 0; i < 20; i += 4) await Promise.all([0, 1, 2, 3].map((k) => chat(i + k)))
  expect(await chat(20, { model: 'no-such-model' })).toBe(404)
  expect(await chat(21, { key: 'sk-wrong-key' })).toBe(401)
  const admin = await fetch(`${base.replace(/\/v1$/, '')}/admin/keys`, {
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  })
  expect(admin.status).toBe(200)
  ids.push(admin.headers.get('x-request-id')!)
  // Request lines are written off the request path, checks after the answers.
  await new Promise((r) => setTimeout(r, 500))

  const lines = stderr.split('\n').filter(Boolean)
  const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  const requests = entries.filter((e) => e.msg === 'request' && e.component === 'gateway')
  for (const id of ids) expect(requests.filter((e) => e.requestId === id)).toHaveLength(1)
  expect(requests).toHaveLength(ids.length)

  const ok = requests.filter((e) => e.status === 200 && e.route === '/v1/chat/completions')
  expect(ok).toHaveLength(20)
  for (const e of ok) {
    expect(e).toMatchObject({
      level: 'info',
      keyId: expect.any(String),
      model: DEV_CHAT_MODEL,
      endpoint: 'chat/completions',
    })
    expect(e.provider).toMatch(/^0x[0-9a-fA-F]{40}$/)
    expect(e.attempts).toBe(1)
    expect(typeof e.stream).toBe('boolean')
    expect(e.inputTokens).toBeGreaterThan(0)
    expect(e.outputTokens).toBeGreaterThan(0)
    expect(e.fee).toMatch(/^\d+$/)
    expect(e.verification).toMatchObject({ status: 'pending' })
    const timings = e.timings as { totalMs: number; firstByteMs: number; overheadMs: number }
    expect(timings.totalMs).toBeGreaterThan(0)
    expect(timings.firstByteMs).toBeLessThanOrEqual(timings.totalMs)
    expect(timings.overheadMs).toBeLessThanOrEqual(timings.firstByteMs)
  }
  expect(requests.find((e) => e.status === 404)).toMatchObject({
    reason: 'unknown_model',
    errorCode: 'model_not_found',
  })
  expect(requests.find((e) => e.status === 401)).toMatchObject({ reason: 'auth', keyId: null })
  // At debug: each check's outcome, and the provider nodes' own request lines.
  expect(entries.filter((e) => e.msg === 'verification')).toHaveLength(20)
  const nodeLines = entries.filter((e) => e.msg === 'request' && e.component === 'provider-node')
  expect(nodeLines).toHaveLength(20)
  for (const e of nodeLines) expect(ids).toContain(e.requestId)

  for (const secret of [API_KEY, ADMIN_KEY, 'sk-wrong-key', anvilPrivateKey(DEV_WALLET_INDEX).slice(2), 'app-sk-'])
    expect(stderr).not.toContain(secret)
})
