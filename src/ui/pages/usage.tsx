import { useState } from 'preact/hooks'
import { getJson } from '../api.ts'
import { AdminKeyNeeded } from '../components/admin-key-needed.tsx'
import { type Bar, BarChart } from '../components/bar-chart.tsx'
import { ErrorBox } from '../components/error-box.tsx'
import { format0G, formatTime, shortAddress } from '../format.ts'
import { receiptHref } from '../router.ts'
import { useKeys } from '../session.ts'
import type { Reconciliation, UsageReport, UsageRow } from '../types.ts'
import { useLoad } from '../use-load.ts'

const WINDOWS = [
  ['24h', 'last 24 hours'],
  ['7d', 'last 7 days'],
  ['30d', 'last 30 days'],
  ['', 'all time'],
] as const
const GROUPS = ['key', 'model', 'provider'] as const
type Group = (typeof GROUPS)[number]

function seriesOf(row: UsageRow, group: Group): string {
  if (group === 'key') return row.keyName ?? row.key ?? '?'
  if (group === 'provider') return row.provider ? shortAddress(row.provider) : '?'
  return row.model ?? '?'
}

/** Rows by day and group as stacked bars, one per day, oldest first. */
function barsOf(rows: UsageRow[], group: Group): Bar[] {
  const days = new Map<string, Bar>()
  for (const row of rows) {
    const day = row.day ?? '?'
    const bar = days.get(day) ?? { label: day, parts: [] }
    bar.parts.push({ series: seriesOf(row, group), value: BigInt(row.fee) })
    days.set(day, bar)
  }
  return [...days.values()].sort((a, b) => a.label.localeCompare(b.label))
}

function Spend() {
  const keys = useKeys()
  const [since, setSince] = useState<string>('7d')
  const [group, setGroup] = useState<Group>('key')
  const report = useLoad(
    () => getJson<UsageReport>(`/admin/usage?by=day,${group}${since ? `&since=${since}` : ''}`, 'admin'),
    [keys.adminKey, since, group],
  )
  const data = report.data
  return (
    <section>
      <h3>Spend</h3>
      <div class="fields">
        <label>
          Window
          <select value={since} onChange={(e) => setSince(e.currentTarget.value)}>
            {WINDOWS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Per
          <select value={group} onChange={(e) => setGroup(e.currentTarget.value as Group)}>
            {GROUPS.map((g) => (
              <option key={g}>{g}</option>
            ))}
          </select>
        </label>
        <button type="button" class="secondary" onClick={report.reload}>
          Refresh
        </button>
      </div>
      <ErrorBox error={report.error} />
      {data && (
        <>
          <p data-testid="usage-totals">
            {data.calls} calls, {format0G(data.total)}; verified {data.verified} ({format0G(data.verifiedTotal)})
          </p>
          {data.rows.length > 0 && <BarChart bars={barsOf(data.rows, group)} title={`Spend per day and ${group}`} />}
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Day</th>
                  <th>{group}</th>
                  <th>Calls</th>
                  <th>Fee</th>
                  <th>Verified</th>
                  <th>Failed checks</th>
                </tr>
              </thead>
              <tbody>
                {data.rows.map((r) => (
                  <tr key={`${r.day}-${seriesOf(r, group)}`}>
                    <td>{r.day}</td>
                    <td title={r.key ?? r.provider ?? r.model}>{seriesOf(r, group)}</td>
                    <td>{r.calls}</td>
                    <td>{format0G(r.fee)}</td>
                    <td>
                      {r.verified} ({format0G(r.verifiedFee)})
                    </td>
                    <td>{r.failed}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  )
}

function ReceiptLookup() {
  const [id, setId] = useState('')
  return (
    <form
      class="card"
      onSubmit={(e) => {
        e.preventDefault()
        if (id.trim()) location.hash = receiptHref(id.trim())
      }}
    >
      <h3>Receipts</h3>
      <div class="fields">
        <label>
          Request id
          <input placeholder="req_…" value={id} onInput={(e) => setId(e.currentTarget.value)} />
        </label>
        <button type="submit">Show receipt</button>
      </div>
    </form>
  )
}

function ReconciliationView() {
  const keys = useKeys()
  const [refresh, setRefresh] = useState(false)
  const state = useLoad(
    () => getJson<Reconciliation>(`/admin/reconciliation${refresh ? '?refresh=true' : ''}`, 'admin'),
    [keys.adminKey, refresh],
  )
  const data = state.data
  return (
    <section>
      <h3>Reconciliation</h3>
      <div class="row">
        <button type="button" class="secondary" onClick={() => (refresh ? state.reload() : setRefresh(true))}>
          Run a round now
        </button>
        {data && (
          <span class="muted">
            As of {formatTime(data.at)}, block {data.scannedTo} of {data.latestBlock}; tolerance{' '}
            {format0G(data.tolerance)}
          </span>
        )}
      </div>
      <ErrorBox error={state.error} />
      {data?.chainError && <p class="error">The chain could not be read: {data.chainError}</p>}
      {data && (
        <div class="table-wrap">
          <table data-testid="reconciliation-table">
            <thead>
              <tr>
                <th>Provider</th>
                <th>Settled</th>
                <th>Unsettled</th>
                <th>Charged</th>
                <th>Recorded</th>
                <th>Calls</th>
                <th>Difference</th>
              </tr>
            </thead>
            <tbody>
              {data.rows.map((r) => (
                <tr key={r.provider} class={r.flagged ? 'flagged' : ''}>
                  <td title={r.provider}>
                    <code>{shortAddress(r.provider)}</code>
                  </td>
                  <td>
                    {format0G(r.settled)} <span class="muted">({r.settlements})</span>
                  </td>
                  <td>{r.unsettled === null ? (r.unsettledError ?? 'unknown') : format0G(r.unsettled)}</td>
                  <td>{format0G(r.charged)}</td>
                  <td>{format0G(r.recorded)}</td>
                  <td>{r.calls}</td>
                  <td>
                    {format0G(r.difference)}
                    {r.flagged && <b> flagged</b>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}

export function Usage() {
  return (
    <>
      <h2>Usage</h2>
      <AdminKeyNeeded>
        <Spend />
        <ReceiptLookup />
        <ReconciliationView />
      </AdminKeyNeeded>
    </>
  )
}
