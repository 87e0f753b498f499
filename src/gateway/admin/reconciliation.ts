import { join } from 'node:path'
import type { Hono } from 'hono'
import type { Address } from 'viem'
import {
  chainChargeSource,
  fetchUnsettledFee,
  Reconciler,
  readChargeState,
  reconciliationJson,
  writeChargeState,
} from '../../billing/reconciliation.ts'
import type { ZgClients } from '../../chain/clients.ts'
import type { GatewayCore } from '../forward.ts'
import { GatewayError } from '../http/openai-error.ts'

export type GatewayReconcilerOptions = {
  /** Background round period. Default 60 s. */
  intervalMs?: number
  /**
   * First block to read settlements from on the first run. Default: the chain's head then, starting from the
   * sub-accounts' balances there (0 reads the whole chain; a restart continues from the saved scan).
   */
  fromBlock?: bigint
  /** Excess tolerated before a provider is flagged, in neuron. Default 0. */
  tolerance?: bigint
  /** How long after asking the providers the ledger is read (calls in flight are recorded by then). Default 2 s. */
  ledgerLagMs?: number
}

/**
 * The gateway's reconciler: the wallet's settlements from the chain, each provider's unsettled fee asked with the
 * wallet's session token (at the URL the catalog lists), the gateway's usage ledger. Progress is saved in
 * `<dataDir>/reconciliation.json`, so a restart reads only the blocks it has not read. Started; stop() on close.
 */
export function startGatewayReconciler(
  core: GatewayCore,
  params: {
    clients: Pick<ZgClients, 'network' | 'publicClient'>
    user: Address
    dataDir: string
    options?: GatewayReconcilerOptions
  },
): Reconciler {
  const source = chainChargeSource(params.clients, params.user)
  const path = join(params.dataDir, 'reconciliation.json')
  const o = params.options ?? {}
  const reconciler = new Reconciler({
    ...source,
    user: params.user,
    unsettledFee: async (provider, signal) => {
      const entry = core.catalog.byProvider(provider)
      if (!entry) throw new Error('the provider is not in the catalog')
      return fetchUnsettledFee({
        url: entry.url,
        user: params.user,
        authorization: await core.tokens.authorization(entry.provider),
        dispatcher: core.dispatcher,
        signal,
      })
    },
    ledgerTotals: () => core.ledger.feesByProvider(),
    tolerance: o.tolerance,
    fromBlock: o.fromBlock,
    intervalMs: o.intervalMs,
    ledgerLagMs: o.ledgerLagMs ?? 2_000,
    loadState: () => readChargeState(path, source.key),
    saveState: (state) => writeChargeState(path, state),
    log: core.log,
  })
  reconciler.start()
  return reconciler
}

/**
 * GET /admin/reconciliation: the latest report (per provider: settled on-chain, unsettled at the provider, recorded
 * in the ledger, the differences, flagged); `?refresh=true` runs a round first. Amounts are neuron, as strings.
 */
export function reconciliationRoutes(admin: Hono, core: GatewayCore): void {
  admin.get('/reconciliation', async (c) => {
    const reconciler = core.reconciler
    if (!reconciler) throw new GatewayError(404, 'reconciliation is not running on this gateway')
    const refresh = c.req.query('refresh')
    const report =
      refresh === 'true' || refresh === '1' ? await reconciler.poll() : (reconciler.report ?? (await reconciler.poll()))
    return c.json(reconciliationJson(report))
  })
}
