import { hash, timingSafeEqual } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import { requestHeader } from '../../http/node-request.ts'
import { GatewayError, unauthorized } from './openai-error.ts'

const BEARER = /^\s*bearer\s+(\S+)\s*$/i

/**
 * Guards `/admin/*` with the admin key: one key, distinct from every inference key (an inference key is refused here
 * and the admin key is refused on `/v1`). Held as its sha256 only and compared in constant time. Without a
 * configured admin key the admin API is off: a 403 says how to turn it on.
 */
export function adminAuth(adminKey: string | undefined): MiddlewareHandler {
  const expected = adminKey ? hash('sha256', adminKey, 'buffer') : undefined
  return async (c, next) => {
    if (!expected) {
      throw new GatewayError(403, 'The admin API is off: start the gateway with --admin-key (or ZG_ADMIN_KEY).', {
        code: 'admin_api_disabled',
      })
    }
    const presented = BEARER.exec(requestHeader(c, 'authorization') ?? '')?.[1]
    if (!presented) throw unauthorized('The admin API needs the admin key: Authorization: Bearer <admin key>.')
    if (!timingSafeEqual(hash('sha256', presented, 'buffer'), expected)) {
      throw unauthorized('Incorrect admin key. The admin API takes the admin key, never an inference key.')
    }
    await next()
  }
}
