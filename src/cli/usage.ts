import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { getAddress } from 'viem'
import { UsageLedger } from '../billing/usage-ledger.ts'
import { format0G } from '../chain/units.ts'
import { type Command, UsageError } from './command.ts'
import { dataDirOf } from './network-options.ts'
import { printJson, table } from './output.ts'

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export const usageCommand: Command = {
  summary: 'Show what the gateway spent, per provider and model, and how much of it was verified',
  options: {
    'data-dir': { type: 'string', description: 'state directory (ZG_DATA_DIR; default .zg)' },
    since: { type: 'string', description: 'window, e.g. 30m, 24h, 7d (default: everything)' },
  },
  async run(values) {
    const path = join(dataDirOf(values), 'gateway', 'usage.sqlite')
    if (!existsSync(path)) throw new UsageError(`no gateway usage recorded in ${path}`)
    let since = 0
    if (values.since !== undefined) {
      const m = /^(\d+)([smhd])$/.exec(values.since as string)
      if (!m) throw new UsageError('--since takes a number and a unit: 30m, 24h, 7d')
      since = Date.now() - Number(m[1]) * UNITS[m[2]!]!
    }
    const ledger = new UsageLedger(path)
    try {
      const rows = ledger.summary(since).map((r) => ({ ...r, provider: getAddress(r.provider) }))
      const total = rows.reduce((s, r) => s + r.fee, 0n)
      if (values.json) printJson({ since: since ? new Date(since).toISOString() : null, total, rows })
      else if (!rows.length) console.log('No calls in that window.')
      else {
        console.log(
          table([
            ['provider', 'model', 'calls', 'verified', 'failed checks', 'fee'],
            ...rows.map((r) => [
              r.provider,
              r.model,
              String(r.calls),
              String(r.verified),
              String(r.failed),
              `${format0G(r.fee)} 0G`,
            ]),
          ]),
        )
        console.log(`Total ${format0G(total)} 0G`)
      }
      return 0
    } finally {
      ledger.close()
    }
  },
}
