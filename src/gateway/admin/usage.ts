import type { Hono } from 'hono'
import { DEFAULT_BY, parseBy, parseSince, usageReport } from '../../billing/usage-report.ts'
import type { GatewayCore } from '../forward.ts'
import type { KeyStore } from '../http/api-keys.ts'
import { GatewayError } from '../http/openai-error.ts'

/**
 * `GET /admin/usage?since=24h&by=key,day`: spend per key, model, provider and day (any of them, or `all`), with how
 * much of it verified; fees in neuron as decimal strings (JSON numbers could not hold them exactly); rows by key
 * also carry the key's name.
 */
export function usageRoutes(admin: Hono, core: GatewayCore, keys: KeyStore): void {
  admin.get('/usage', async (c) => {
    let since: number | undefined
    let by = DEFAULT_BY
    try {
      const s = c.req.query('since')
      if (s) since = parseSince(s)
      const b = c.req.query('by')
      if (b) by = parseBy(b)
    } catch (err) {
      throw new GatewayError(400, (err as Error).message, { type: 'invalid_request_error', code: 'invalid_query' })
    }
    const report = await usageReport(core.ledger, { since, by })
    // A key's name beside its id, for a reader who named the key, not numbered it.
    const rows = await Promise.all(
      report.rows.map(async (r) => (r.key ? { ...r, keyName: (await keys.get(r.key))?.name ?? null } : r)),
    )
    return c.body(
      JSON.stringify({ ...report, rows }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
      200,
      {
        'content-type': 'application/json',
      },
    )
  })
}
