import { Hono } from 'hono'
import type { GatewayCore } from '../forward.ts'
import type { KeyStore } from '../http/api-keys.ts'
import { fundingRoutes } from './funding.ts'
import { keyRoutes } from './keys.ts'
import { providerRoutes } from './providers.ts'
import { reconciliationRoutes } from './reconciliation.ts'
import { usageRoutes } from './usage.ts'

/** What the admin routes read and change. */
export type AdminDeps = { core: GatewayCore; keys: KeyStore }

/**
 * The admin API, mounted at `/admin` behind the admin key (src/gateway/http/admin-auth.ts). Each concern adds its
 * routes from its own file: keys, usage, funding, reconciliation.
 */
export function adminRoutes(_deps: AdminDeps): Hono {
  const admin = new Hono()
  reconciliationRoutes(admin, _deps.core)
  fundingRoutes(admin, _deps.core)
  providerRoutes(admin, _deps.core)
  usageRoutes(admin, _deps.core, _deps.keys)
  keyRoutes(admin, _deps)
  return admin
}
