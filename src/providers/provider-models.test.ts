import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createProviderAgent } from './provider-agent.ts'
import { fetchProviderModels, modelsUrl, ProviderModelsError } from './provider-models.ts'

let server: Server
let base: string
const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>()

beforeAll(async () => {
  server = createServer((req, res) => {
    const route = routes.get(req.url ?? '')
    if (route) route(req, res)
    else {
      res.statusCode = 404
      res.end('{"error":"not found"}')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

const json = (body: unknown) => (_req: IncomingMessage, res: ServerResponse) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify(body))
}

async function failure(url: string, timeoutMs = 2_000): Promise<ProviderModelsError> {
  const err = await fetchProviderModels(new URL(url), { timeoutMs }).catch((e: unknown) => e)
  expect(err).toBeInstanceOf(ProviderModelsError)
  return err as ProviderModelsError
}

describe('fetchProviderModels', () => {
  it('returns the ids of an OpenAI model list, deduplicated, skipping ids that are not short strings', async () => {
    routes.set(
      '/ok/v1/models',
      json({
        object: 'list',
        data: [
          { id: 'a' },
          { id: 'b', canonical_id: 'bb' },
          { id: 'a' },
          { id: 7 },
          null,
          { id: '' },
          { id: 'x'.repeat(300) },
        ],
      }),
    )
    expect(await fetchProviderModels(new URL(`${base}/ok/`))).toEqual(['a', 'b'])
  })

  it('fails on a non-2xx answer, non-JSON, or a body without a data array', async () => {
    expect((await failure(`${base}/missing`)).message).toMatch(/status 404/)
    routes.set('/html/v1/models', (_q, r) => r.end('<html>'))
    expect((await failure(`${base}/html`)).message).toMatch(/not JSON/)
    routes.set('/err/v1/models', json({ error: 'nope' }))
    expect((await failure(`${base}/err`)).message).toMatch(/no "data" array/)
  })

  it('gives up after the timeout', async () => {
    routes.set('/slow/v1/models', () => {}) // never answers
    const started = Date.now()
    expect((await failure(`${base}/slow`, 200)).message).toMatch(/timed out after 200 ms/)
    expect(Date.now() - started).toBeLessThan(1_500)
  })

  it('refuses an oversized body', async () => {
    routes.set('/huge/v1/models', (_q, r) => {
      r.write('{"data":[')
      r.end(`"${'x'.repeat(1_100_000)}"]}`)
    })
    expect((await failure(`${base}/huge`)).message).toMatch(/larger than/)
  })

  it('does not follow redirects (a provider cannot bounce the gateway elsewhere)', async () => {
    routes.set('/redir/v1/models', (_q, r) => {
      r.statusCode = 302
      r.setHeader('location', 'http://169.254.169.254/latest/meta-data/')
      r.end()
    })
    expect((await failure(`${base}/redir`)).message).toMatch(/status 302/)
  })

  it('through the strict provider agent, refuses a host name that resolves to loopback', async () => {
    routes.set('/v1/models', json({ data: [{ id: 'a' }] }))
    const strict = createProviderAgent({ allowPrivate: false })
    const open = createProviderAgent({ allowPrivate: true })
    try {
      const viaName = new URL(base.replace('127.0.0.1', 'localhost'))
      const err = await fetchProviderModels(viaName, { dispatcher: strict }).catch((e: unknown) => e)
      expect((err as Error).message).toMatch(/resolves to .*loopback/)
      expect(await fetchProviderModels(viaName, { dispatcher: open })).toEqual(['a'])
    } finally {
      await Promise.all([strict.close(), open.close()])
    }
  })

  it('builds {base}/v1/models, keeping a path prefix', () => {
    expect(modelsUrl(new URL('http://h:1'))).toBe('http://h:1/v1/models')
    expect(modelsUrl(new URL('http://h:1/prefix//'))).toBe('http://h:1/prefix/v1/models')
    expect(modelsUrl(new URL('https://h/p?x=1#y'))).toBe('https://h/p/v1/models')
  })
})
