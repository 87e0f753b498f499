import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createProviderAgent } from '../providers/provider-agent.ts'
import { fetchJsonGuarded, GuardedFetchError, guardedFetch } from './guarded-json.ts'

let server: Server
let base: string
const agent = new Agent()
const opts = { timeoutMs: 500, maxBytes: 1024 }

beforeAll(async () => {
  server = createServer((req, res) => {
    switch (req.url) {
      case '/ok':
        return res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":1}')
      case '/missing-json':
        return res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no"}')
      case '/missing-text':
        return res.writeHead(404).end('not here')
      case '/redirect':
        return res.writeHead(302, { location: 'http://10.0.0.1/secret' }).end()
      case '/garbage':
        return res.writeHead(200).end('<html>')
      case '/declared-big':
        return res.writeHead(200, { 'content-length': '5000' }).end('x'.repeat(5000))
      case '/chunked-big': {
        // No content-length: the cap must hold while reading.
        res.writeHead(200, { 'content-type': 'application/json' })
        let sent = 0
        const timer = setInterval(() => {
          if (res.destroyed || sent > 100_000) {
            clearInterval(timer)
            return res.end()
          }
          res.write('x'.repeat(512))
          sent += 512
        }, 1)
        return
      }
      case '/slow-headers':
        return setTimeout(() => res.writeHead(200).end('{}'), 2_000).unref()
      case '/slow-body':
        res.writeHead(200, { 'content-type': 'application/json' })
        res.write('{"a":')
        return setTimeout(() => res.end('1}'), 2_000).unref()
      default:
        return res.writeHead(500).end()
    }
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((done) => server.close(done))
  await agent.close()
})

async function failure(path: string, options = opts, dispatcher = agent): Promise<GuardedFetchError> {
  const err = await fetchJsonGuarded(dispatcher, `${base}${path}`, options).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(GuardedFetchError)
  return err as GuardedFetchError
}

describe('fetchJsonGuarded', () => {
  it('returns status and parsed JSON', async () => {
    expect(await fetchJsonGuarded(agent, `${base}/ok`, opts)).toEqual({ status: 200, json: { a: 1 } })
  })

  it('passes non-2xx answers through, with their JSON when they have one', async () => {
    expect(await fetchJsonGuarded(agent, `${base}/missing-json`, opts)).toEqual({ status: 404, json: { error: 'no' } })
    expect(await fetchJsonGuarded(agent, `${base}/missing-text`, opts)).toEqual({ status: 404, json: undefined })
  })

  it('refuses a redirect instead of following it', async () => {
    const err = await failure('/redirect')
    expect(err.kind).toBe('redirect')
    expect(err.message).toMatch(/redirect 302 to http:\/\/10\.0\.0\.1\/secret refused/)
  })

  it('refuses a 2xx answer that is not JSON', async () => {
    expect((await failure('/garbage')).kind).toBe('not-json')
  })

  it('caps the body: by Content-Length, and while reading a chunked one', async () => {
    expect((await failure('/declared-big')).kind).toBe('too-large')
    const chunked = await failure('/chunked-big')
    expect(chunked.kind).toBe('too-large')
    expect(chunked.message).toMatch(/over 1024 bytes/)
  })

  it('times out on slow headers and on a slow body', async () => {
    const headers = await failure('/slow-headers')
    expect(headers.kind).toBe('network')
    expect(headers.message).toMatch(/no answer within 500 ms/)
    expect((await failure('/slow-body')).kind).toBe('network')
  })

  it('goes through the given dispatcher: the guarded agent refuses a name resolving to loopback', async () => {
    const guarded = createProviderAgent({ allowPrivate: false })
    try {
      const url = `http://localhost:${new URL(base).port}/ok`
      const err = await fetchJsonGuarded(guarded, url, opts).then(
        () => undefined,
        (e: unknown) => e as GuardedFetchError,
      )
      expect(err?.kind).toBe('network')
      expect(err?.message).toMatch(/localhost resolves to/)
    } finally {
      await guarded.close()
    }
  })
})

describe('guardedFetch', () => {
  const get = guardedFetch(agent, opts)

  it('answers a Response with the status, headers and body as served', async () => {
    const res = await get(`${base}/missing-json`)
    expect(res.status).toBe(404)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(await res.text()).toBe('{"error":"no"}')
  })

  it('refuses redirects and bodies over the cap, as the JSON fetch does', async () => {
    await expect(get(`${base}/redirect`)).rejects.toMatchObject({ kind: 'redirect' })
    await expect(get(`${base}/chunked-big`)).rejects.toMatchObject({ kind: 'too-large' })
  })
})
