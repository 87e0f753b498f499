import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { DEV_PROVIDERS } from '../src/devnet/dev-stack.ts'
import { startTestStack } from './support/dev-stack.ts'
import { serveArgs, spawnUntilReady } from './support/serve.ts'

const run = promisify(execFile)
let stack: Awaited<ReturnType<typeof startTestStack>>

async function cli(args: string[]) {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['bin/zg-gateway.js', ...args, '--data-dir', stack.dataDir],
      {
        env: { PATH: process.env.PATH ?? '' },
      },
    )
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

const chat = (key: string) =>
  fetch(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hello' }] }),
  })

beforeAll(async () => {
  stack = await startTestStack()
})
afterAll(async () => {
  await stack?.dispose()
})

describe('gateway CLI against a running dev stack', () => {
  it('lists the devnet providers', async () => {
    const r = await cli(['providers', 'list', '--json'])
    expect(r.code).toBe(0)
    const { providers } = JSON.parse(r.stdout)
    expect(providers).toHaveLength(DEV_PROVIDERS.length)
    expect(providers.map((p: { verifiability: string }) => p.verifiability).sort()).toEqual(
      DEV_PROVIDERS.map((p) => p.verifiability).sort(),
    )
  })

  it('verifies a provider honestly: a dev signer is not a TEE', async () => {
    const r = await cli(['providers', 'verify', stack.nodes[0]!.address, '--json'])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout)).toMatchObject({
      record: { tee: 'none', level: null, fresh: false, quoteSha256: null },
      dcap: null,
    })
  })

  it('serve refuses malformed funding and reconciliation flags before touching the chain', async () => {
    for (const [flag, value, message] of [
      ['--reconcile-interval', '0', /--reconcile-interval must be a positive number of seconds: 0/],
      ['--reconcile-from-block', 'soon', /--reconcile-from-block must be a block number: soon/],
      ['--reconcile-tolerance', 'lots', /--reconcile-tolerance: /],
      ['--dispute-limit', '0', /--dispute-limit must be a positive whole number: 0/],
    ] as const) {
      const r = await cli(['serve', '--network', 'testnet', '--port', '0', flag, value])
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(message)
    }
  })

  it('tells a malformed --provider from a missing one', async () => {
    const malformed = await cli(['providers', 'verify', '--provider', 'hello'])
    expect(malformed.code).toBe(2)
    expect(malformed.stderr.trim()).toBe('error: --provider is not an address: hello')
    const missing = await cli(['providers', 'verify'])
    expect(missing.code).toBe(2)
    expect(missing.stderr.trim()).toBe('error: --provider is required')
  })

  it('creates an API key the running gateway accepts, lists it without the key, and revokes it', async () => {
    const created = await cli(['keys', 'create', '--name', 'ci', '--json'])
    const { key, id } = JSON.parse(created.stdout)
    expect(key).toMatch(/^sk-zg-/)
    expect((await chat(key)).status).toBe(200)
    const listed = await cli(['keys', 'list', '--json'])
    expect(listed.stdout).not.toContain(key)
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id, name: 'ci' })])
    expect((await cli(['keys', 'revoke', id])).code).toBe(0)
    expect((await cli(['keys', 'revoke', 'key_unknown'])).code).toBe(2)
  })

  it('serves a gateway on an RPC URL network with configured API keys (and never the dev key)', async () => {
    const { anvilPrivateKey } = await import('../src/devnet/anvil.ts')
    const served = await spawnUntilReady(
      [
        'bin/zg-gateway.js',
        ...serveArgs(stack.devnet.info, { apiKey: 'sk-served-1', dataDir: `${stack.dataDir}/served` }),
      ],
      { ZG_PRIVATE_KEY: anvilPrivateKey(1) },
    )
    try {
      const base = served.base
      const out = served.output()
      expect(out).not.toContain(anvilPrivateKey(1).slice(2))
      expect(out).toContain('API keys: 1 from the configuration, 0 in the key store')
      const call = (key: string) =>
        fetch(`${base}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'served' }] }),
        })
      expect((await call('sk-served-1')).status).toBe(200)
      expect((await call('sk-zg-dev')).status).toBe(401)
    } finally {
      await served.stop()
    }
  })

  it('counts the key store before saying that no API key is configured', async () => {
    const dir = `${stack.dataDir}/served-stored`
    const created = await run(process.execPath, [
      'bin/zg-gateway.js',
      'keys',
      'create',
      '--name',
      'stored',
      '--json',
      '--data-dir',
      dir,
    ])
    const { key } = JSON.parse(created.stdout)
    const args = serveArgs(stack.devnet.info, { apiKey: 'unused', dataDir: dir })
    args.splice(args.indexOf('--api-key'), 2)
    const { anvilPrivateKey } = await import('../src/devnet/anvil.ts')
    const served = await spawnUntilReady(['bin/zg-gateway.js', ...args], { ZG_PRIVATE_KEY: anvilPrivateKey(1) })
    try {
      expect(served.output()).not.toContain('no API keys configured')
      expect(served.output()).toContain('API keys: 0 from the configuration, 1 in the key store')
      const res = await fetch(`${served.base}/models`, { headers: { authorization: `Bearer ${key}` } })
      expect(res.status).toBe(200)
    } finally {
      await served.stop()
    }
  })

  it('reports usage per provider and model, with verified counts', async () => {
    await chat('sk-zg-dev')
    await new Promise((r) => setTimeout(r, 300))
    const r = await cli(['usage', '--json'])
    expect(r.code).toBe(0)
    const { rows, total } = JSON.parse(r.stdout)
    const row = rows.find((x: { model: string }) => x.model === DEV_CHAT_MODEL)
    expect(row.calls).toBeGreaterThanOrEqual(2)
    expect(row.verified).toBe(row.calls)
    expect(BigInt(total)).toBeGreaterThan(0n)
  })
})
