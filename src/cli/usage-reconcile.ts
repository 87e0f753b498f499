import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { LocalAccount } from 'viem'
import {
  chainChargeSource,
  fetchUnsettledFee,
  Reconciler,
  type ReconciliationRow,
  readChargeState,
  reconciliationJson,
} from '../billing/reconciliation.ts'
import { SessionTokenCache } from '../billing/session-token-cache.ts'
import { UsageLedger } from '../billing/usage-ledger.ts'
import { getService } from '../chain/actions/get-service.ts'
import { format0G } from '../chain/units.ts'
import { type Options, UsageError, type Values } from './command.ts'
import { clientsFrom, dataDirOf, networkOptions } from './network-options.ts'
import { printJson, table } from './output.ts'

/** The options `usage --reconcile` adds: the chain to read and the wallet whose charges are reconciled. */
export const reconcileOptions: Options = {
  reconcile: {
    type: 'boolean',
    description: 'compare what providers charged on-chain (settled + unsettled) with the fees the gateway recorded',
  },
  ...networkOptions,
  'from-block': { type: 'string', description: 'with --reconcile: first block to read settlements from (default 0)' },
  tolerance: { type: 'string', description: 'with --reconcile: excess in neuron tolerated before a flag (default 0)' },
}

function bigintOption(values: Values, name: string): bigint | undefined {
  const text = values[name] as string | undefined
  if (text === undefined) return undefined
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} takes a whole number`)
  return BigInt(text)
}

const neuron = (n: bigint | null) => (n === null ? '?' : `${format0G(n)} 0G`)

/**
 * `zg-gateway usage --reconcile`: one round of the gateway's reconciliation, from the CLI. It reads the gateway's
 * usage.sqlite and, if the gateway saved its scan (reconciliation.json), continues from it without writing it.
 * Exit code 1 when a provider is flagged.
 */
export async function runReconcile(values: Values): Promise<number> {
  const dataDir = dataDirOf(values)
  const path = join(dataDir, 'gateway', 'usage.sqlite')
  if (!existsSync(path)) throw new UsageError(`no gateway usage recorded in ${path}`)
  const clients = await clientsFrom(values, true)
  const account = clients.walletClient!.account as LocalAccount
  const user = account.address
  const tokens = new SessionTokenCache({ clients, account })
  const source = chainChargeSource(clients, user)
  const statePath = join(dataDir, 'gateway', 'reconciliation.json')
  const ledger = new UsageLedger(path)
  try {
    const reconciler = new Reconciler({
      ...source,
      user,
      unsettledFee: async (provider, signal) => {
        const service = await getService(clients, { provider })
        if (!service) throw new Error('the provider has no service registered')
        return fetchUnsettledFee({
          url: service.url,
          user,
          authorization: await tokens.authorization(provider),
          signal,
        })
      },
      ledgerTotals: () => ledger.feesByProvider(),
      tolerance: bigintOption(values, 'tolerance'),
      // Without the gateway's saved scan, the whole chain: the CLI has no earlier run to start from.
      fromBlock: bigintOption(values, 'from-block') ?? 0n,
      maxRangesPerPoll: Number.POSITIVE_INFINITY,
      loadState: () => (values['from-block'] === undefined ? readChargeState(statePath, source.key) : undefined),
    })
    const report = await reconciler.poll()
    if (values.json) printJson(reconciliationJson(report))
    else {
      const rows = report.rows
      if (!rows.length) console.log('No provider charged or recorded anything.')
      else {
        const mark = (r: ReconciliationRow) => (r.flagged ? 'OVER' : r.unsettled === null ? 'unsettled unknown' : 'ok')
        console.log(
          table([
            ['provider', 'settled', 'unsettled', 'charged', 'recorded', 'verified', 'difference (neuron)', ''],
            ...rows.map((r) => [
              r.provider,
              neuron(r.settled),
              neuron(r.unsettled),
              neuron(r.charged),
              neuron(r.recorded),
              neuron(r.recordedVerified),
              r.difference.toString(),
              mark(r),
            ]),
          ]),
        )
      }
      console.log(`Settlements read up to block ${report.scannedTo} (chain at ${report.latestBlock}).`)
      for (const r of report.flagged)
        console.log(`Provider ${r.provider} charged ${r.difference} neuron more than the gateway recorded.`)
      if (report.chainError) console.log(`Reading the chain failed: ${report.chainError}`)
    }
    return report.flagged.length ? 1 : 0
  } finally {
    ledger.close()
  }
}
