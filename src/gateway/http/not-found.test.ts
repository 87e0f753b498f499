import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { expectOpenAiError } from './expect-openai-error.ts'
import { methodNotAllowed, notFoundHandler } from './not-found.ts'
import { requestId } from './request-id.ts'

function app() {
  const app = new Hono()
  app.use('*', requestId())
  app.post('/v1/chat/completions', (c) => c.json({ ok: true }))
  app.all('/v1/chat/completions', methodNotAllowed(['POST']))
  app.notFound(notFoundHandler)
  return app
}

describe('notFoundHandler', () => {
  it('answers an unknown path with an OpenAI 404', async () => {
    const res = await app().request('/v1/nope', { method: 'POST' })
    const error = await expectOpenAiError(res, 404, 'unknown_url')
    expect(error.message).toContain('POST /v1/nope')
  })

  it('uses the request id from the middleware', async () => {
    const res = await app().request('/v1/nope', { headers: { 'x-request-id': 'abc' } })
    expect(res.headers.get('x-request-id')).toBe('abc')
  })

  it('works without the request-id middleware', async () => {
    const bare = new Hono()
    bare.notFound(notFoundHandler)
    await expectOpenAiError(await bare.request('/x'), 404)
  })
})

describe('methodNotAllowed', () => {
  it('answers a wrong method with an OpenAI 405 and Allow', async () => {
    const res = await app().request('/v1/chat/completions')
    expect(res.headers.get('allow')).toBe('POST')
    const error = await expectOpenAiError(res, 405, 'method_not_allowed')
    expect(error.message).toContain('GET /v1/chat/completions')
  })

  it('leaves the right method alone', async () => {
    const res = await app().request('/v1/chat/completions', { method: 'POST' })
    expect(res.status).toBe(200)
  })
})
