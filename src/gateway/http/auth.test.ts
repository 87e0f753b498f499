import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { ApiKeyStore } from './api-keys.ts'
import { type ApiKeyEnv, apiKeyAuth, redact, sameText } from './auth.ts'
import { expectOpenAiError } from './expect-openai-error.ts'
import { errorHandler } from './openai-error.ts'
import { requestId } from './request-id.ts'

function setup(devKey?: string) {
  const store = new ApiKeyStore(':memory:')
  const created = store.create('tester')
  const app = new Hono<ApiKeyEnv>()
  app.use('*', requestId())
  app.onError(errorHandler(() => {}))
  app.use('/v1/*', apiKeyAuth({ store, devKey }))
  app.get('/v1/whoami', (c) => c.json(c.get('apiKey')))
  return { app, store, created }
}

describe('apiKeyAuth', () => {
  it('accepts a Bearer key and names its owner', async () => {
    const { app, created } = setup()
    const res = await app.request('/v1/whoami', { headers: { authorization: `Bearer ${created.key}` } })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ id: created.id, name: 'tester' })
  })

  it.each(['bearer', 'BEARER', 'BeArEr'])('accepts the scheme spelled %s', async (scheme) => {
    const { app, created } = setup()
    const res = await app.request('/v1/whoami', { headers: { authorization: `${scheme}  ${created.key} ` } })
    expect(res.status).toBe(200)
  })

  it('accepts x-api-key', async () => {
    const { app, created } = setup()
    const res = await app.request('/v1/whoami', { headers: { 'x-api-key': created.key } })
    expect(res.status).toBe(200)
  })

  it('answers a missing key with 401 invalid_api_key', async () => {
    const { app } = setup()
    for (const headers of [{}, { authorization: 'Bearer ' }, { authorization: 'Basic dXNlcjpwYXNz' }]) {
      const error = await expectOpenAiError(await app.request('/v1/whoami', { headers }), 401, 'invalid_api_key')
      expect(error.message).toContain("You didn't provide an API key")
      expect(error.type).toBe('authentication_error')
    }
  })

  it('answers a wrong key with 401 without echoing it', async () => {
    const { app } = setup()
    const wrong = 'sk-zg-WRONGWRONGWRONGWRONGWRONGWRONG'
    const res = await app.request('/v1/whoami', { headers: { authorization: `Bearer ${wrong}` } })
    const error = await expectOpenAiError(res, 401, 'invalid_api_key')
    expect(error.message).toContain('Incorrect API key provided: sk-zg-***')
    expect(error.message).not.toContain('WRONG')
  })

  it('rejects a revoked key, also one verified a moment before', async () => {
    const { app, store, created } = setup()
    const ok = await app.request('/v1/whoami', { headers: { 'x-api-key': created.key } })
    expect(ok.status).toBe(200)
    store.revoke(created.id)
    const res = await app.request('/v1/whoami', { headers: { 'x-api-key': created.key } })
    await expectOpenAiError(res, 401, 'invalid_api_key')
  })

  it('accepts the dev key only when configured', async () => {
    const dev = setup('sk-zg-dev')
    const res = await dev.app.request('/v1/whoami', { headers: { authorization: 'Bearer sk-zg-dev' } })
    expect(await res.json()).toEqual({ id: 'dev', name: 'dev' })
    const prod = setup()
    const refused = await prod.app.request('/v1/whoami', { headers: { authorization: 'Bearer sk-zg-dev' } })
    await expectOpenAiError(refused, 401, 'invalid_api_key')
    for (const near of ['sk-zg-de', 'sk-zg-devv', 'sk-zg-deV', 'Sk-zg-dev']) {
      const wrong = await dev.app.request('/v1/whoami', { headers: { authorization: `Bearer ${near}` } })
      await expectOpenAiError(wrong, 401, 'invalid_api_key')
    }
  })

  it('still accepts stored keys in dev mode', async () => {
    const { app, created } = setup('sk-zg-dev')
    const res = await app.request('/v1/whoami', { headers: { authorization: `Bearer ${created.key}` } })
    expect(res.status).toBe(200)
  })
})

describe('sameText', () => {
  it('is string equality', () => {
    const pairs: Array<[string, string]> = [
      ['', ''],
      ['a', 'a'],
      ['sk-zg-dev', 'sk-zg-dev'],
      ['', 'a'],
      ['a', ''],
      ['ab', 'a'],
      ['a', 'ab'],
      ['abc', 'abd'],
      ['xbc', 'abc'],
      ['é', 'e'],
      ['\u{1f600}', '\u{1f601}'],
    ]
    for (const [a, b] of pairs) expect(sameText(a, b)).toBe(a === b)
  })
})

describe('redact', () => {
  it('shows at most 6 characters and never a whole short key', () => {
    expect(redact('sk-zg-abcdefghijkl')).toBe('sk-zg-***')
    expect(redact('abcd')).toBe('ab***')
    expect(redact('a')).toBe('***')
  })
})
