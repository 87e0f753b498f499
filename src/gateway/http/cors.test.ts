import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { corsMatcher, EXPOSED_HEADERS, gatewayCors } from './cors.ts'
import { errorHandler } from './openai-error.ts'

describe('allowed origins', () => {
  it('matches exact origins, any port of a host, and *', () => {
    const allowed = corsMatcher(['https://app.example', 'http://localhost:*'])
    expect(allowed('https://app.example')).toBe(true)
    expect(allowed('https://APP.example')).toBe(true)
    expect(allowed('http://app.example')).toBe(false)
    expect(allowed('https://app.example.evil')).toBe(false)
    expect(allowed('http://localhost:3000')).toBe(true)
    expect(allowed('http://localhost:5173')).toBe(true)
    expect(allowed('http://localhost')).toBe(false)
    expect(allowed('http://localhost:3000.evil.com')).toBe(false)
    expect(allowed('http://localhostevil:3000')).toBe(false)
    expect(corsMatcher(['*'])('https://anything.example')).toBe(true)
    expect(corsMatcher([])('http://localhost:3000')).toBe(false)
  })

  it('refuses patterns that would never match rather than ignoring them', () => {
    expect(() => corsMatcher(['localhost:3000'])).toThrow(/allowed-origin pattern/)
    expect(() => corsMatcher(['https://*.example.com'])).toThrow(/allowed-origin pattern/)
  })
})

function app() {
  const a = new Hono()
  a.onError(errorHandler(() => {}))
  a.use('*', gatewayCors(['http://localhost:*']))
  a.use('/v1/*', async (c, next) => {
    if (c.req.header('authorization') !== 'Bearer k') return c.json({ error: { message: 'no key' } }, 401)
    await next()
  })
  a.post('/v1/thing', (c) => c.json({ ok: true }, 200, { 'x-request-id': 'req_1' }))
  return a
}

describe('gatewayCors', () => {
  it('answers an allowed preflight without an API key, echoing the requested headers', async () => {
    const res = await app().request('/v1/thing', {
      method: 'OPTIONS',
      headers: {
        origin: 'http://localhost:3000',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-stainless-os',
      },
    })
    expect(res.status).toBe(204)
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:3000')
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization, content-type, x-stainless-os')
    expect(res.headers.get('access-control-allow-methods')).toContain('POST')
  })

  it('refuses a preflight from another origin with an OpenAI-shaped 403', async () => {
    const res = await app().request('/v1/thing', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    })
    expect(res.status).toBe(403)
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('origin_not_allowed')
  })

  it('exposes the request id and the x-zg headers on answers and on errors', async () => {
    const ok = await app().request('/v1/thing', {
      method: 'POST',
      headers: { origin: 'http://localhost:3000', authorization: 'Bearer k' },
    })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:3000')
    expect(ok.headers.get('access-control-expose-headers')).toBe(EXPOSED_HEADERS)
    for (const h of ['x-request-id', 'x-zg-provider', 'x-zg-verification', 'x-zg-receipt'])
      expect(EXPOSED_HEADERS).toContain(h)
    const refused = await app().request('/v1/thing', { method: 'POST', headers: { origin: 'http://localhost:3000' } })
    expect(refused.status).toBe(401)
    expect(refused.headers.get('access-control-allow-origin')).toBe('http://localhost:3000')
  })

  it('adds nothing for requests without an Origin or from an origin not allowed', async () => {
    const plain = await app().request('/v1/thing', { method: 'POST', headers: { authorization: 'Bearer k' } })
    expect(plain.headers.get('access-control-allow-origin')).toBeNull()
    const other = await app().request('/v1/thing', {
      method: 'POST',
      headers: { authorization: 'Bearer k', origin: 'https://evil.example' },
    })
    expect(other.status).toBe(200)
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
  })
})
