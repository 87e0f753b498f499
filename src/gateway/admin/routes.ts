import { Hono } from 'hono'
import type { GatewayCore } from '../forward.ts'
import type { ApiKeyStore } from '../http/api-keys.ts'

/** What the admin routes read and change. */
export type AdminDeps = { core: GatewayCore; keys: ApiKeyStore }

/**
 * The admin API, mounted at `/admin` behind the admin key (src/gateway/http/admin-auth.ts). Each concern adds its
 * routes from its own file: keys, usage, funding, reconciliation.
 */
export function adminRoutes(_deps: AdminDeps): Hono {
  const admin = new Hono()
  return admin
}
