import { execFile } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Address } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGatewayApp } from '../gateway/app.ts'
import type { GatewayCore } from '../gateway/forward.ts'
import type { ApiKeyStore } from '../gateway/http/api-keys.ts'
import { listenApp } from '../http/listen.ts'
import type { CatalogEntry, ProviderCatalog } from '../providers/catalog.ts'
import { Router } from '../providers/router.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const address = (n: number) => `0x${n.toString(16).padStart(40, '0')}` as Address

/** The real CLI process, as a user runs it. */
async function cli(args: string[]) {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/zg-gateway.js', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '' },
    })
    return { code: 0, stdout }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout + e.stderr }
  }
}

let gateway: { url: string; close(): void }

beforeAll(async () => {
  const list = [1, 2].map(
    (n) =>
      ({
        provider: address(n),
        models: ['m'],
        inputPrice: 10n ** 12n,
        outputPrice: 10n ** 12n,
        verifiability: 'TeeML',
        teeSignerAcknowledged: true,
        healthy: true,
      }) as unknown as CatalogEntry,
  )
  const catalog = { entries: () => list, candidates: () => list } as unknown as ProviderCatalog
  const router = new Router({ catalog, threshold: 1 })
  router.reportSuccess(address(1), 250, { bytes: 20_480, ms: 1_000 })
  router.reportFailure(address(2))
  const app = createGatewayApp({
    core: { catalog, router } as unknown as GatewayCore,
    keys: { verify: () => undefined } as unknown as ApiKeyStore,
    adminKey: 'sk-admin',
    ready: () => true,
    log: () => {},
  })
  const server = await listenApp(app.fetch, { hostname: '127.0.0.1', port: 0 })
  gateway = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() }
})

afterAll(() => gateway?.close())

describe('zg-gateway providers list --gateway', () => {
  it("prints the running gateway's view of each provider: circuit, speed, error rate", async () => {
    const { code, stdout } = await cli(['providers', 'list', '--gateway', gateway.url, '--admin-key', 'sk-admin'])
    expect(code).toBe(0)
    const [header, first, second] = stdout.trim().split('\n')
    expect(header).toMatch(/^provider\s+models\s+level\s+input price\s+output price\s+circuit\s+failures\s+errors/)
    expect(first).toMatch(new RegExp(`^${address(1)}\\s+m\\s+L1\\s+.*closed\\s+0\\s+0%\\s+250 ms\\s+20\\.0 KiB/s`))
    expect(second).toMatch(
      new RegExp(`^${address(2)}\\s+m\\s+L1\\s+.*open \\(probe in \\d+ s\\)\\s+1\\s+10%\\s+-\\s+-`),
    )
  })

  it('answers JSON with --json, and a usage error without the admin key', async () => {
    const json = await cli(['providers', 'list', '--gateway', gateway.url, '--admin-key', 'sk-admin', '--json'])
    const body = JSON.parse(json.stdout) as { providers: Array<{ breaker: { state: string } }> }
    expect(body.providers.map((p) => p.breaker.state)).toEqual(['closed', 'open'])
    const refused = await cli(['providers', 'list', '--gateway', gateway.url, '--admin-key', 'wrong'])
    expect(refused.code).not.toBe(0)
    expect(refused.stdout).toContain('answered 401')
  })
})
