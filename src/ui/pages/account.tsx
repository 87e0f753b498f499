import { useState } from 'preact/hooks'
import { call, getJson } from '../api.ts'
import { AdminKeyNeeded } from '../components/admin-key-needed.tsx'
import { ErrorBox } from '../components/error-box.tsx'
import { format0G, shortAddress } from '../format.ts'
import { useKeys } from '../session.ts'
import type { Funding } from '../types.ts'
import { useLoad } from '../use-load.ts'

/**
 * Moving funds is signed by the wallet's key, which the gateway holds for session tokens and receipts but exposes
 * no endpoint to spend with: the CLI does it.
 */
function ChainActions({ providers }: { providers: string[] }) {
  const [provider, setProvider] = useState('')
  const [amount, setAmount] = useState('1')
  const p = provider || providers[0] || '0xPROVIDER'
  const a = amount.trim() || '1'
  return (
    <section class="card" data-testid="chain-actions">
      <h3>Deposit, transfer, retrieve</h3>
      <p>
        This gateway has no endpoints that move funds: deposits, transfers and refunds are transactions signed with the
        wallet's key, and the CLI sends them. Run these where the key is (<code>--key-file</code> or{' '}
        <code>ZG_PRIVATE_KEY</code>), with the gateway's <code>--network</code>:
      </p>
      <div class="fields">
        <label>
          Provider
          <select value={provider} onChange={(e) => setProvider(e.currentTarget.value)}>
            {providers.map((x) => (
              <option key={x} value={x}>
                {x}
              </option>
            ))}
          </select>
        </label>
        <label>
          Amount (0G)
          <input value={amount} inputMode="decimal" onInput={(e) => setAmount(e.currentTarget.value)} />
        </label>
      </div>
      <pre>
        {[
          '# the ledger and every sub-account, with pending refunds and their lock time',
          'npx zg-gateway account show',
          '# deposit into the ledger (main account)',
          `npx zg-gateway account deposit --amount ${a}`,
          "# move from the ledger into a provider's sub-account",
          `npx zg-gateway account transfer --provider ${p} --amount ${a}`,
          '# release matured refunds to the ledger, start refunds of the rest (again after the lock time)',
          `npx zg-gateway account retrieve --provider ${p}`,
          '# withdraw from the ledger to the wallet',
          `npx zg-gateway account refund --amount ${a}`,
        ].join('\n')}
      </pre>
    </section>
  )
}

export function Account() {
  const keys = useKeys()
  const [refresh, setRefresh] = useState(false)
  const funding = useLoad(
    () => getJson<Funding>(`/admin/funding${refresh ? '?refresh=true' : ''}`, 'admin'),
    [keys.adminKey, refresh],
  )
  const [error, setError] = useState<Error>()
  async function resume(provider: string) {
    setError(undefined)
    try {
      await call(`/admin/funding/${provider}/resume`, { auth: 'admin', method: 'POST' })
      funding.reload()
    } catch (err) {
      setError(err as Error)
    }
  }
  const data = funding.data
  return (
    <>
      <h2>Account</h2>
      <AdminKeyNeeded>
        <div class="row">
          <button
            type="button"
            class="secondary"
            onClick={() => (refresh ? funding.reload() : setRefresh(true))}
            disabled={funding.loading}
          >
            Rebalance and refresh
          </button>
          {data && (
            <span class="muted">
              Wallet <code>{data.wallet}</code>, automatic funding {data.autoFund ? 'on' : 'off'}
            </span>
          )}
        </div>
        <ErrorBox error={funding.error ?? error} />
        <div class="table-wrap">
          <table data-testid="funding-table">
            <thead>
              <tr>
                <th>Sub-account (provider)</th>
                <th>State</th>
                <th>Balance</th>
                <th>Pending refund</th>
                <th>Unsettled</th>
                <th>Target</th>
                <th>Verified credit</th>
                <th>Moved in</th>
                <th>Checked / disputed</th>
                <th>Routed</th>
              </tr>
            </thead>
            <tbody>
              {data?.providers.map((p) => (
                <tr key={p.provider}>
                  <td title={p.provider}>
                    <code>{shortAddress(p.provider)}</code>
                  </td>
                  <td>
                    {p.state}
                    {p.reason && <span class="muted"> ({p.reason})</span>}
                    {p.state === 'stopped' && (
                      <button type="button" class="secondary" onClick={() => resume(p.provider)}>
                        Resume
                      </button>
                    )}
                  </td>
                  <td>{format0G(p.balance)}</td>
                  <td>{format0G(p.pendingRefund)}</td>
                  <td>{format0G(p.unsettled)}</td>
                  <td>{format0G(p.target)}</td>
                  <td>{format0G(p.credit)}</td>
                  <td>{format0G(p.movedIn)}</td>
                  <td>
                    {p.checked} / {p.disputed}
                  </td>
                  <td>{p.routed ? 'yes' : 'no'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {data && data.providers.length === 0 && <p class="muted">No sub-account is funded by this gateway yet.</p>}
        {data && <ChainActions providers={data.providers.map((p) => p.provider)} />}
        <p class="muted">
          Target = unsettled + recent spend + reserve; a top-up moves at most the verified credit (fees of verified
          answers not yet moved).
        </p>
      </AdminKeyNeeded>
    </>
  )
}
