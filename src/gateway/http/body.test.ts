import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { getRequestListener, type ServerType, serve } from '@hono/node-server'
import { type Context, Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { readJsonBodyEarly } from '../../http/early-body.ts'
import { readJsonBody } from './body.ts'
import { expectOpenAiError } from './expect-openai-error.ts'
import { errorHandler } from './openai-error.ts'
import { requestId } from './request-id.ts'

const LIMIT = 1024

function app() {
  const app = new Hono()
  app.use('*', requestId())
  app.onError(errorHandler(() => {}))
  app.post('/echo', async (c) => {
    const { bytes, json } = await readJsonBody(c, { limit: LIMIT })
    return c.json({ size: bytes.byteLength, json })
  })
  return app
}

/** An endless body that records how much of it was pulled. */
function endlessBody(chunkSize: number) {
  const state = { pulled: 0, cancelled: false }
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      state.pulled += chunkSize
      controller.enqueue(new Uint8Array(chunkSize).fill(0x20))
    },
    cancel() {
      state.cancelled = true
    },
  })
  return { stream, state }
}

describe('readJsonBody', () => {
  it('returns the exact bytes and the parsed object', async () => {
    const text = '{"model":"m","messages":[],"top_k":5}'
    const res = await app().request('/echo', {
      method: 'POST',
      body: text,
      headers: { 'content-type': 'application/json' },
    })
    expect(await res.json()).toEqual({ size: text.length, json: { model: 'm', messages: [], top_k: 5 } })
  })

  it('accepts valid JSON with a wrong or missing content-type (curl -d)', async () => {
    for (const headers of [{ 'content-type': 'application/x-www-form-urlencoded' }, {}]) {
      const res = await app().request('/echo', { method: 'POST', body: '{"a":1}', headers })
      expect(res.status).toBe(200)
    }
  })

  it('refuses a declared content-length over the limit without reading the body', async () => {
    const { stream, state } = endlessBody(64)
    const res = await app().request('/echo', {
      method: 'POST',
      body: stream,
      headers: { 'content-length': String(60 * 1024 * 1024) },
      duplex: 'half',
    } as RequestInit)
    await expectOpenAiError(res, 413, 'request_too_large')
    expect(state.pulled).toBeLessThanOrEqual(64 * 2)
  })

  it('stops reading a chunked body as soon as it passes the limit', async () => {
    const { stream, state } = endlessBody(100)
    const res = await app().request('/echo', { method: 'POST', body: stream, duplex: 'half' } as RequestInit)
    await expectOpenAiError(res, 413, 'request_too_large')
    expect(state.cancelled).toBe(true)
    expect(state.pulled).toBeLessThan(LIMIT * 2)
  })

  it('accepts a body exactly at the limit', async () => {
    const body = `{"a":"${'x'.repeat(LIMIT - 8)}"}`
    expect(body.length).toBe(LIMIT)
    expect((await app().request('/echo', { method: 'POST', body })).status).toBe(200)
  })

  it.each([
    ['truncated', '{"model":'],
    ['empty', ''],
    ['not JSON', 'model=m'],
    ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])],
  ])('answers a %s body with 400 invalid_json', async (_, body) => {
    const res = await app().request('/echo', { method: 'POST', body })
    const error = await expectOpenAiError(res, 400, 'invalid_json')
    expect(error.type).toBe('invalid_request_error')
  })

  it.each([
    ['[{"model":"m"}]', 'an array'],
    ['"hello"', 'a string'],
    ['42', 'a number'],
    ['null', 'null'],
  ])('answers the non-object body %s with a clear 400', async (body, described) => {
    const res = await app().request('/echo', { method: 'POST', body })
    const error = await expectOpenAiError(res, 400, 'invalid_request_body')
    expect(error.message).toContain(`must be a JSON object, but got ${described}`)
  })
})

describe('readJsonBody on a real server', () => {
  let server: ServerType | undefined
  afterEach(() => {
    server?.close()
    server = undefined
  })

  async function listen(): Promise<number> {
    const started = serve({ fetch: app().fetch, hostname: '127.0.0.1', port: 0 })
    server = started
    await new Promise<void>((resolve) => started.once('listening', () => resolve()))
    return (started.address() as AddressInfo).port
  }

  /** Sends headers and a first chunk, keeps the upload open, and resolves with the response as soon as it comes. */
  function upload(port: number, headers: Record<string, string>, keepWriting: boolean) {
    return new Promise<{ status: number; body: string; elapsedMs: number; sent: number }>((resolve, reject) => {
      const started = performance.now()
      let sent = 0
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/echo', headers }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => {
          body += chunk
        })
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body, elapsedMs: performance.now() - started, sent })
          req.destroy()
        })
      })
      req.on('error', (err) => {
        if (!req.destroyed) reject(err)
      })
      const chunk = Buffer.alloc(512, 0x20)
      const write = () => {
        if (req.destroyed || sent > 10 * 1024 * 1024) return
        sent += chunk.length
        req.write(chunk, () => {
          if (keepWriting) setImmediate(write)
        })
      }
      write()
    })
  }

  it('answers a 60 MB content-length with 413 at once (acceptance case 11)', async () => {
    const port = await listen()
    const res = await upload(port, { 'content-length': String(60 * 1024 * 1024) }, false)
    expect(res.status).toBe(413)
    expect(JSON.parse(res.body).error.code).toBe('request_too_large')
    expect(res.elapsedMs).toBeLessThan(1000)
  })

  it('answers an oversized chunked upload with 413 long before it ends', async () => {
    const port = await listen()
    const res = await upload(port, { 'transfer-encoding': 'chunked' }, true)
    expect(res.status).toBe(413)
    expect(res.sent).toBeLessThan(10 * 1024 * 1024)
  })
})

describe('readJsonBodyEarly', () => {
  let server: Server | undefined
  afterEach(() => {
    server?.close()
    server = undefined
  })

  /** The gateway's server shape: the early read in the request listener, then the app. */
  async function listen(): Promise<number> {
    const routes = app()
    // Whether the body was being read (or was read) before the route touched it; the route then reads it as usual.
    routes.post('/peek', async (c) => {
      const incoming = (c.env as { incoming: IncomingMessage }).incoming
      const readEarly = incoming.readableDidRead || incoming.listenerCount('data') > 0
      if (c.req.query('read') === undefined) return c.json({ readEarly })
      const { bytes } = await readJsonBody(c, { limit: 4 * 1024 * 1024 })
      return c.json({ readEarly, size: bytes.byteLength })
    })
    const listener = getRequestListener(routes.fetch)
    const started = createServer((req, res) => {
      readJsonBodyEarly(req)
      listener(req, res)
    })
    server = started
    await new Promise<void>((resolve) => started.listen(0, '127.0.0.1', () => resolve()))
    return (started.address() as AddressInfo).port
  }

  async function post(port: number, path: string, body: string, headers: Record<string, string>) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body, headers })
    return { status: res.status, json: (await res.json()) as Record<string, unknown> }
  }

  it('has a small JSON body in before the route asks, and the route gets its exact bytes', async () => {
    const port = await listen()
    const text = '{"model":"m","messages":[{"role":"user","content":"hi"}]}'
    const res = await post(port, '/peek?read', text, { 'content-type': 'application/json' })
    expect(res).toEqual({ status: 200, json: { readEarly: true, size: text.length } })
    // The routes that read JSON bodies work on it as they do without it.
    const echo = await post(port, '/echo', text, { 'Content-Type': 'Application/JSON; charset=utf-8' })
    expect(echo.json.size).toBe(text.length)
  })

  it('hands the body over with its last declared byte, before the stream ends', async () => {
    // A stand-in for Node's request: its body comes in two pieces, and 'end' has not come yet.
    const incoming = Object.assign(new Readable({ read() {} }), {
      method: 'POST',
      headers: { 'content-length': '7', 'content-type': 'application/json' },
    }) as unknown as IncomingMessage
    readJsonBodyEarly(incoming)
    incoming.push(Buffer.from('{"a":'))
    incoming.push(Buffer.from('1}'))
    const c = { env: { incoming } } as unknown as Context
    const read = await Promise.race([readJsonBody(c, { limit: LIMIT }), sleep(1000).then(() => 'still waiting')])
    expect(read).toEqual({ bytes: Buffer.from('{"a":1}'), json: { a: 1 } })
  })

  it('leaves other bodies to their routes: not JSON, chunked, or over 1 MiB', async () => {
    const port = await listen()
    const form = await post(port, '/peek', '{"a":1}', { 'content-type': 'application/x-www-form-urlencoded' })
    expect(form.json.readEarly).toBe(false)
    const large = `{"a":"${'x'.repeat(1024 * 1024 + 1)}"}`
    const big = await post(port, '/peek?read', large, { 'content-type': 'application/json' })
    expect(big.json).toEqual({ readEarly: false, size: large.length })
    const chunked = await fetch(`http://127.0.0.1:${port}/peek`, {
      method: 'POST',
      body: new Blob(['{"a":1}']).stream(),
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit)
    expect(await chunked.json()).toEqual({ readEarly: false })
  })

  it('still refuses a declared length over the route limit (413), and survives a client gone mid-body', async () => {
    const port = await listen()
    const over = await post(port, '/echo', `{"a":"${'x'.repeat(LIMIT)}"}`, { 'content-type': 'application/json' })
    expect(over.status).toBe(413)
    // Headers promise 100 bytes, 10 come, the client goes: the early read fails, and nothing awaits it.
    const rejections: unknown[] = []
    const onRejection = (reason: unknown) => rejections.push(reason)
    process.on('unhandledRejection', onRejection)
    try {
      await new Promise<void>((resolve) => {
        const req = httpRequest({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/peek',
          headers: { 'content-type': 'application/json', 'content-length': '100' },
        })
        req.on('error', () => resolve())
        req.write('{"a":"xxx"', () => setTimeout(() => req.destroy(), 20))
        req.on('close', () => resolve())
      })
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(rejections).toEqual([])
      // The server still serves.
      expect((await post(port, '/peek', '{}', { 'content-type': 'application/json' })).status).toBe(200)
    } finally {
      process.off('unhandledRejection', onRejection)
    }
  })
})
