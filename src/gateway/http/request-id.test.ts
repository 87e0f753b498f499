import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { badRequest, errorHandler } from './openai-error.ts'
import { type RequestIdEnv, requestId, requestIdOnResponse } from './request-id.ts'

/** Responses that count reads of their headers. */
const watched: Array<{ reads: number }> = []

function watchedResponse(body: string, init: ResponseInit): Response {
  const res = new Response(body, init)
  const headers = res.headers
  const counter = { reads: 0 }
  watched.push(counter)
  Object.defineProperty(res, 'headers', {
    get() {
      counter.reads++
      return headers
    },
  })
  return res
}

function app() {
  const app = new Hono<RequestIdEnv>()
  app.use('*', requestId())
  app.onError(errorHandler(() => {}))
  app.get('/ok', (c) => c.json({ id: c.get('requestId') }))
  app.get('/raw', () => new Response('raw'))
  app.get('/own/:marked', (c) => {
    const res = watchedResponse('own', { headers: { 'x-request-id': c.get('requestId') } })
    if (c.req.param('marked') === 'yes') requestIdOnResponse(c)
    return res
  })
  app.get('/fail', () => {
    throw badRequest('no')
  })
  return app
}

describe('requestId', () => {
  it('generates req_<32 hex> and exposes it to handlers', async () => {
    const res = await app().request('/ok')
    const id = res.headers.get('x-request-id')
    expect(id).toMatch(/^req_[0-9a-f]{32}$/)
    expect(await res.json()).toEqual({ id })
  })

  it('generates a different id per request', async () => {
    const a = (await app().request('/ok')).headers.get('x-request-id')
    const b = (await app().request('/ok')).headers.get('x-request-id')
    expect(a).not.toBe(b)
  })

  it('reuses a sane incoming id', async () => {
    const res = await app().request('/ok', { headers: { 'x-request-id': 'trace.42:abc-DEF_9' } })
    expect(res.headers.get('x-request-id')).toBe('trace.42:abc-DEF_9')
  })

  it.each(['has space', 'x'.repeat(129), 'a\u00e9b', 'semi;colon', ''])('replaces the unsafe id %j', async (sent) => {
    const res = await app().request('/ok', { headers: { 'x-request-id': sent } })
    expect(res.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/)
  })

  it('lands on raw responses, errors and unknown routes', async () => {
    for (const path of ['/raw', '/fail', '/nowhere']) {
      const res = await app().request(path, { headers: { 'x-request-id': 'same' } })
      expect(res.headers.get('x-request-id')).toBe('same')
    }
  })

  it('leaves a response alone when its handler says it carries the id (its headers are not even read)', async () => {
    for (const marked of ['yes', 'no']) {
      const res = await app().request(`/own/${marked}`, { headers: { 'x-request-id': 'mine' } })
      expect(res.headers.get('x-request-id')).toBe('mine')
    }
    const [yes, no] = watched.slice(-2)
    // Read once each by the assertion above; the middleware read the unmarked one's too.
    expect(yes!.reads).toBe(1)
    expect(no!.reads).toBeGreaterThan(1)
  })
})
