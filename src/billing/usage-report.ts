import { getAddress } from 'viem'
import { type CallLedger, SPEND_DIMENSIONS, type SpendDimension, type SpendRow } from './usage-ledger.ts'

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `--since` / `?since=`: a window back from `now` (30m, 24h, 7d) or a date (2026-12-01, ISO time); ms. */
export function parseSince(value: string, now = Date.now()): number {
  const m = /^(\d+)([smhd])$/.exec(value)
  if (m) return now - Number(m[1]) * UNITS[m[2]!]!
  const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN
  if (Number.isNaN(at)) throw new RangeError('since takes a window (30m, 24h, 7d) or a date (2026-12-01)')
  return at
}

/** `--by` / `?by=`: a comma-separated list of key, model, provider, day, or `all`. */
export function parseBy(value: string): SpendDimension[] {
  if (value === 'all') return [...SPEND_DIMENSIONS]
  const by = value.split(',').map((s) => s.trim())
  const unknown = by.find((d) => !(SPEND_DIMENSIONS as readonly string[]).includes(d))
  if (unknown !== undefined || !by.length)
    throw new RangeError(`by takes ${SPEND_DIMENSIONS.join(', ')} (comma-separated) or all, not ${unknown ?? value}`)
  return by as SpendDimension[]
}

/** What `zg-gateway usage` shows when not told how to group: per provider and model. */
export const DEFAULT_BY: readonly SpendDimension[] = ['provider', 'model']

export type UsageReport = {
  since: string | null
  by: SpendDimension[]
  /** Calls and fees (neuron) over all rows, and the verified part of each. */
  calls: number
  verified: number
  total: bigint
  verifiedTotal: bigint
  rows: SpendRow[]
}

/** The spend report that the CLI and `GET /admin/usage` both give (fees in neuron; providers checksummed). */
export async function usageReport(
  ledger: CallLedger,
  params: { since?: number; by?: readonly SpendDimension[] },
): Promise<UsageReport> {
  const by = SPEND_DIMENSIONS.filter((d) => (params.by ?? DEFAULT_BY).includes(d))
  const rows = (await ledger.spend({ since: params.since, by })).map((r) =>
    r.provider ? { ...r, provider: getAddress(r.provider) } : r,
  )
  return {
    since: params.since ? new Date(params.since).toISOString() : null,
    by,
    calls: rows.reduce((s, r) => s + r.calls, 0),
    verified: rows.reduce((s, r) => s + r.verified, 0),
    total: rows.reduce((s, r) => s + r.fee, 0n),
    verifiedTotal: rows.reduce((s, r) => s + r.verifiedFee, 0n),
    rows,
  }
}
