import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { UsageLedger } from '../billing/usage-ledger.ts'
import { DEFAULT_BY, parseBy, parseSince, usageReport } from '../billing/usage-report.ts'
import { format0G } from '../chain/units.ts'
import { type Command, UsageError } from './command.ts'
import { dataDirOf } from './network-options.ts'
import { printJson, table } from './output.ts'
import { reconcileOptions, runReconcile } from './usage-reconcile.ts'

export const usageCommand: Command = {
  summary: 'Show what the gateway spent, per key, model, provider or day, and how much of it was verified',
  options: {
    'data-dir': { type: 'string', description: 'state directory (ZG_DATA_DIR; default .zg)' },
    since: { type: 'string', description: 'window, e.g. 30m, 24h, 7d, or a date (default: everything)' },
    by: {
      type: 'string',
      description: 'group by key, model, provider, day (comma-separated) or all (default provider,model)',
    },
    ...reconcileOptions,
  },
  async run(values) {
    if (values.reconcile) return runReconcile(values)
    const path = join(dataDirOf(values), 'gateway', 'usage.sqlite')
    if (!existsSync(path)) throw new UsageError(`no gateway usage recorded in ${path}`)
    let since = 0
    let by = DEFAULT_BY
    try {
      if (values.since !== undefined) since = parseSince(values.since as string)
      if (values.by !== undefined) by = parseBy(values.by as string)
    } catch (err) {
      throw new UsageError(`--${(err as Error).message}`)
    }
    const ledger = new UsageLedger(path)
    try {
      const report = await usageReport(ledger, { since, by })
      if (values.json) printJson(report)
      else if (!report.rows.length) console.log('No calls in that window.')
      else {
        console.log(
          table([
            [...report.by, 'calls', 'verified', 'failed checks', 'fee', 'verified fee'],
            ...report.rows.map((r) => [
              ...report.by.map((d) => r[d] ?? '-'),
              String(r.calls),
              String(r.verified),
              String(r.failed),
              `${format0G(r.fee)} 0G`,
              `${format0G(r.verifiedFee)} 0G`,
            ]),
          ]),
        )
        console.log(
          `Total ${format0G(report.total)} 0G over ${report.calls} calls; verified ${format0G(report.verifiedTotal)} 0G over ${report.verified}`,
        )
      }
      return 0
    } finally {
      ledger.close()
    }
  },
}
