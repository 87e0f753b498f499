import type { Hono } from 'hono'
import { providerLevel } from '../../attestation/levels.ts'
import type { CatalogEntry } from '../../providers/catalog.ts'
import type { GatewayCore } from '../forward.ts'

/** One provider as GET /admin/providers shows it: amounts in neuron, as strings (bigint has no JSON form). */
export type ProviderJson = ReturnType<typeof providerJson>

function providerJson(entry: CatalogEntry, core: GatewayCore) {
  const headroom = core.router.headroom(entry.provider)
  return {
    provider: entry.provider,
    serviceType: entry.serviceType,
    models: entry.models,
    url: entry.url,
    inputPrice: entry.inputPrice.toString(),
    outputPrice: entry.outputPrice.toString(),
    verifiability: entry.verifiability,
    level: providerLevel(entry, core.attestations?.known(entry.provider, entry.teeSignerAddress)?.level),
    /** The catalog's last GET {url}/v1/models worked. */
    healthy: entry.healthy,
    /** Set aside by the funding policy (disputed responses): no candidate while true. */
    flagged: core.router.isFlagged(entry.provider),
    headroom: headroom === undefined ? null : headroom.toString(),
    breaker: core.router.health(entry.provider),
  }
}

/**
 * GET /admin/providers: every provider in the catalog with what the router makes of it (docs/routing.md): its
 * circuit, measured first byte, throughput and error rate, whether the funding policy set it aside, and the
 * escrow headroom when known. The figures live in this process only.
 */
export function providerRoutes(admin: Hono, core: GatewayCore): void {
  admin.get('/providers', (c) =>
    c.json({ object: 'list', data: core.catalog.entries().map((entry) => providerJson(entry, core)) }),
  )
}
