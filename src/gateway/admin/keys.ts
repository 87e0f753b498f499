import type { Hono } from 'hono'
import type { KeyStore } from '../http/api-keys.ts'
import { readJsonBody } from '../http/body.ts'
import { parseKeySettings } from '../http/key-settings.ts'
import { badRequest, notFound } from '../http/openai-error.ts'
import { receiptJson } from '../receipts.ts'
import type { AdminDeps } from './routes.ts'

function settingsOf(json: Record<string, unknown>) {
  try {
    return parseKeySettings(json)
  } catch (err) {
    throw badRequest((err as Error).message, null, 'invalid_key_settings')
  }
}

/** Runs a store change, turning a setting the store refuses into a 400. */
async function checked<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof RangeError) throw badRequest(err.message, null, 'invalid_key_settings')
    throw err
  }
}

function found<T>(value: T | undefined, id: string): T {
  if (value === undefined) throw notFound(`no API key with id ${id}`, 'key_not_found')
  return value
}

/**
 * `/admin/keys`: virtual keys (create, list, show, update, revoke, rotate), and `/admin/receipts/{id}`: any key's
 * receipt (a key reads only its own at /v1/receipts/{id}).
 */
export function keyRoutes(admin: Hono, deps: AdminDeps): void {
  const keys: KeyStore = deps.keys
  admin.get('/keys', async (c) => c.json({ object: 'list', data: await keys.list() }))
  admin.post('/keys', async (c) => {
    const { json } = await readJsonBody(c, { limit: 64 * 1024 })
    const settings = settingsOf(json)
    if (!settings.name) throw badRequest('a key needs a name', 'name', 'missing_required_parameter')
    const name = settings.name
    const created = await checked(() => keys.create(name, settings))
    return c.json({ ...(await keys.get(created.id)), key: created.key }, 201)
  })
  admin.get('/keys/:id', async (c) => c.json(found(await keys.get(c.req.param('id')), c.req.param('id'))))
  admin.patch('/keys/:id', async (c) => {
    const id = c.req.param('id')
    found(await keys.get(id), id)
    const { json } = await readJsonBody(c, { limit: 64 * 1024 })
    const settings = settingsOf(json)
    return c.json(await checked(() => keys.update(id, settings)))
  })
  admin.delete('/keys/:id', async (c) => {
    const id = c.req.param('id')
    found(await keys.get(id), id)
    await keys.revoke(id)
    return c.json(await keys.get(id))
  })
  admin.post('/keys/:id/rotate', async (c) => {
    const id = c.req.param('id')
    const rotated = found(await keys.rotate(id), id)
    return c.json({ ...(await keys.get(id)), key: rotated.key })
  })
  admin.get('/receipts/:id', async (c) => {
    const call = await deps.core.ledger.get(c.req.param('id'))
    if (!call) throw notFound(`no receipt for request ${c.req.param('id')}`, 'receipt_not_found')
    return c.json(receiptJson(call))
  })
}
