import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type ServerType, serve } from '@hono/node-server'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
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
