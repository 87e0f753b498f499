import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { adminAuth } from './admin-auth.ts'
import { errorHandler } from './openai-error.ts'

function app(adminKey: string | undefined) {
  const a = new Hono()
  a.onError(errorHandler(() => {}))
  a.use('/admin/*', adminAuth(adminKey))
  a.get('/admin/ping', (c) => c.json({ ok: true }))
  return a
}

const get = (key: string | undefined, adminKey: string | null = 'sk-admin-1') =>
  app(adminKey ?? undefined).request('/admin/ping', { headers: key ? { authorization: `Bearer ${key}` } : {} })

describe('adminAuth', () => {
  it('lets the admin key through', async () => {
    expect((await get('sk-admin-1')).status).toBe(200)
  })

  it('refuses no key, another key and a near miss with an OpenAI-shaped 401', async () => {
    for (const key of [undefined, 'sk-zg-dev', 'sk-admin-2', 'sk-admin-1x']) {
      const res = await get(key)
      expect(res.status).toBe(401)
      expect(((await res.json()) as { error: { type: string } }).error.type).toBe('authentication_error')
    }
  })

  it('is off, saying how to turn it on, without an admin key', async () => {
    const res = await get('anything', null)
    expect(res.status).toBe(403)
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('--admin-key')
  })
})
