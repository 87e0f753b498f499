import { hash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'

export type MetricsAccessOptions = {
  /** `--metrics-public`: anyone who reaches the port may scrape. */
  public?: boolean
  /** The gateway's admin key: from elsewhere than loopback, a scrape must present it (Authorization: Bearer). */
  adminKey?: string
}

/** What a scrape may do: read the metrics, present the admin key first, or nothing from where it comes. */
export type MetricsAccess = 'allowed' | 'unauthorized' | 'forbidden'

const BEARER = /^\s*bearer\s+(\S+)\s*$/i

/** A loopback peer: 127.0.0.0/8, ::1, or either as an IPv4-mapped IPv6 address. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return v4.startsWith('127.') || address === '::1'
}

/**
 * Who may read /metrics. A Prometheus on the same host (loopback) scrapes without credentials, as it does most
 * exporters; from elsewhere it needs `--metrics-public`, or the admin key as a bearer token (Prometheus'
 * `authorization` scrape setting). Without either, a remote scrape is refused: the metrics name providers, models and
 * fees, which are the operator's business. Under fetch() (no socket) the peer is unknown and counts as remote.
 */
export function metricsAccess(c: Context, options: MetricsAccessOptions): MetricsAccess {
  if (options.public) return 'allowed'
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  if (isLoopback(incoming?.socket.remoteAddress)) return 'allowed'
  if (!options.adminKey) return 'forbidden'
  const presented = BEARER.exec(c.req.header('authorization') ?? '')?.[1]
  if (!presented) return 'unauthorized'
  const ok = timingSafeEqual(hash('sha256', presented, 'buffer'), hash('sha256', options.adminKey, 'buffer'))
  return ok ? 'allowed' : 'unauthorized'
}
