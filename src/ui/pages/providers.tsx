import { Fragment } from 'preact'
import { useState } from 'preact/hooks'
import { getJson } from '../api.ts'
import { AdminKeyNeeded } from '../components/admin-key-needed.tsx'
import { ErrorBox } from '../components/error-box.tsx'
import { format0G, formatMs, formatRate, formatTime, priceText, shortAddress } from '../format.ts'
import { useKeys } from '../session.ts'
import type { ProviderRow } from '../types.ts'
import { useLoad } from '../use-load.ts'

/** What each verification level means (docs/verification.md). */
const LEVELS: Record<string, string> = {
  none: 'the provider does not sign, or its signer is not acknowledged on-chain',
  L0: 'signed, by a signer not acknowledged on-chain',
  L1: 'signed by the TEE signer the contract owner acknowledged on-chain',
  L2: 'L1, and that signer was attested: its Intel TDX quote verified in-process',
  L3: 'L2, and its workload and GPU evidence verified',
}

/**
 * There is no attestation endpoint on the gateway: attesting (a fresh nonce, the quote checked against Intel's
 * collateral) is the CLI's `providers verify`, which prints every check.
 */
function Attestation({ row }: { row: ProviderRow }) {
  return (
    <div class="notice" data-testid="attestation">
      <p>
        <b>{row.level}</b>: {LEVELS[row.level] ?? 'see docs/verification.md'}. Verifiability on-chain:{' '}
        {row.verifiability}.
      </p>
      <p>
        The gateway does not serve attestations. To attest this provider's signer now (its report with a fresh nonce,
        the TDX quote verified in-process, the workload evidence), run:
      </p>
      <pre>npx zg-gateway providers verify {row.provider}</pre>
      <p class="muted">
        Add <code>--json</code> for the record, and the gateway's <code>--network</code> for a network other than the
        devnet.
      </p>
    </div>
  )
}

export function Providers() {
  const keys = useKeys()
  const list = useLoad(
    () => getJson<{ data: ProviderRow[] }>('/admin/providers', 'admin').then((r) => r.data),
    [keys.adminKey],
  )
  const [shown, setShown] = useState<string>()
  return (
    <>
      <h2>Providers</h2>
      <AdminKeyNeeded>
        <div class="row">
          <button type="button" class="secondary" onClick={list.reload}>
            Refresh
          </button>
          <span class="muted">Latency and throughput are this gateway's measurements (weighted averages).</span>
        </div>
        <ErrorBox error={list.error} />
        <div class="table-wrap">
          <table data-testid="providers-table">
            <thead>
              <tr>
                <th>Provider</th>
                <th>Service</th>
                <th>Models</th>
                <th>Price</th>
                <th>Level</th>
                <th>Health</th>
                <th>Circuit</th>
                <th>First byte</th>
                <th>Throughput</th>
                <th>Errors</th>
                <th>Escrow headroom</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data?.map((p) => (
                <Fragment key={p.provider}>
                  <tr>
                    <td title={`${p.provider} ${p.url}`}>
                      <code>{shortAddress(p.provider)}</code>
                    </td>
                    <td>{p.serviceType}</td>
                    <td>{p.models.join(', ')}</td>
                    <td>{priceText(p.serviceType, p.inputPrice, p.outputPrice)}</td>
                    <td>
                      <span class={`badge level-${p.level}`}>{p.level}</span>
                    </td>
                    <td>{p.flagged ? 'stopped (disputes)' : p.healthy ? 'healthy' : 'unreachable'}</td>
                    <td>
                      <span class={`badge circuit-${p.breaker.state}`}>{p.breaker.state}</span>
                      {p.breaker.state === 'open' && p.breaker.nextProbeAt && (
                        <span class="muted"> probe {formatTime(p.breaker.nextProbeAt)}</span>
                      )}
                    </td>
                    <td>{formatMs(p.breaker.ttfbMs)}</td>
                    <td>{formatRate(p.breaker.throughput)}</td>
                    <td>
                      {Math.round(p.breaker.errorRate * 100)}%
                      {p.breaker.failures > 0 && <span class="muted"> ({p.breaker.failures} in a row)</span>}
                    </td>
                    <td>{format0G(p.headroom)}</td>
                    <td>
                      <button
                        type="button"
                        class="secondary"
                        onClick={() => setShown(shown === p.provider ? undefined : p.provider)}
                      >
                        Attestation
                      </button>
                    </td>
                  </tr>
                  {shown === p.provider && (
                    <tr>
                      <td colSpan={12}>
                        <Attestation row={p} />
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      </AdminKeyNeeded>
    </>
  )
}
