import { useState } from 'preact/hooks'
import { call, getJson } from '../api.ts'
import { AdminKeyNeeded } from '../components/admin-key-needed.tsx'
import { ErrorBox } from '../components/error-box.tsx'
import { format0G, formatTime } from '../format.ts'
import { saveKeys, useKeys } from '../session.ts'
import type { KeyInfo } from '../types.ts'
import { useLoad } from '../use-load.ts'

const PERIODS = ['', 'daily', 'weekly', 'monthly']
const LEVELS = ['none', 'L0', 'L1', 'L2', 'L3']

/** The form's text as the admin API's settings (docs/keys.md): budgets are 0G as text; empty clears. */
type Limits = { budget: string; period: string; rpm: string; tpm: string }

function limitSettings(l: Limits) {
  const count = (v: string) => (v.trim() ? Number(v) : null)
  return {
    budget: l.budget.trim() || null,
    budget_period: l.period || null,
    rpm: count(l.rpm),
    tpm: count(l.tpm),
  }
}

function LimitFields({ value, onChange }: { value: Limits; onChange(next: Limits): void }) {
  return (
    <>
      <label>
        Budget (0G)
        <input
          inputMode="decimal"
          placeholder="none"
          value={value.budget}
          onInput={(e) => onChange({ ...value, budget: e.currentTarget.value })}
        />
      </label>
      <label>
        Budget period
        <select value={value.period} onChange={(e) => onChange({ ...value, period: e.currentTarget.value })}>
          {PERIODS.map((p) => (
            <option key={p} value={p}>
              {p || 'never resets'}
            </option>
          ))}
        </select>
      </label>
      <label>
        Requests a minute
        <input
          inputMode="numeric"
          placeholder="no limit"
          value={value.rpm}
          onInput={(e) => onChange({ ...value, rpm: e.currentTarget.value })}
        />
      </label>
      <label>
        Tokens a minute
        <input
          inputMode="numeric"
          placeholder="no limit"
          value={value.tpm}
          onInput={(e) => onChange({ ...value, tpm: e.currentTarget.value })}
        />
      </label>
    </>
  )
}

/** A key's secret, shown once (the gateway keeps only its hash). */
function Secret({ name, secret, onDone }: { name: string; secret: string; onDone(): void }) {
  return (
    <div class="notice" data-testid="new-secret">
      <p>
        The secret of <b>{name}</b>, shown this once: copy it now.
      </p>
      <pre data-testid="secret-value">{secret}</pre>
      <div class="row">
        <button
          type="button"
          onClick={() => {
            saveKeys({ apiKey: secret })
            onDone()
          }}
        >
          Use as the playground's API key
        </button>
        <button type="button" class="secondary" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  )
}

function CreateKey({ onCreated }: { onCreated(key: KeyInfo & { key: string }): void }) {
  const [name, setName] = useState('')
  const [limits, setLimits] = useState<Limits>({ budget: '', period: '', rpm: '', tpm: '' })
  const [models, setModels] = useState('')
  const [level, setLevel] = useState('none')
  const [expires, setExpires] = useState('')
  const [error, setError] = useState<Error>()
  async function create(e: Event) {
    e.preventDefault()
    setError(undefined)
    try {
      const settings = {
        name,
        ...limitSettings(limits),
        allowed_models: models
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean),
        min_verification: level,
        expires_at: expires ? new Date(expires).toISOString() : null,
      }
      const res = await call('/admin/keys', { auth: 'admin', json: settings })
      onCreated((await res.json()) as KeyInfo & { key: string })
      setName('')
    } catch (err) {
      setError(err as Error)
    }
  }
  return (
    <form class="card" onSubmit={create} aria-label="Create a key">
      <h3>Create a key</h3>
      <div class="fields">
        <label>
          Name
          <input required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <LimitFields value={limits} onChange={setLimits} />
        <label>
          Allowed models
          <input placeholder="all" value={models} onInput={(e) => setModels(e.currentTarget.value)} />
        </label>
        <label>
          Minimum verification
          <select value={level} onChange={(e) => setLevel(e.currentTarget.value)}>
            {LEVELS.map((l) => (
              <option key={l}>{l}</option>
            ))}
          </select>
        </label>
        <label>
          Expires
          <input type="datetime-local" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
        </label>
      </div>
      <button type="submit">Create key</button>
      <ErrorBox error={error} />
    </form>
  )
}

function EditLimits({ info, onSaved }: { info: KeyInfo; onSaved(): void }) {
  const [limits, setLimits] = useState<Limits>({
    budget: info.budget === null ? '' : format0G(info.budget).replace(' 0G', ''),
    period: info.budgetPeriod ?? '',
    rpm: info.rpm?.toString() ?? '',
    tpm: info.tpm?.toString() ?? '',
  })
  const [error, setError] = useState<Error>()
  async function save(e: Event) {
    e.preventDefault()
    try {
      await call(`/admin/keys/${info.id}`, { auth: 'admin', method: 'PATCH', json: limitSettings(limits) })
      onSaved()
    } catch (err) {
      setError(err as Error)
    }
  }
  return (
    <form onSubmit={save} aria-label={`Limits of ${info.name}`}>
      <div class="fields">
        <LimitFields value={limits} onChange={setLimits} />
      </div>
      <button type="submit">Save limits</button>
      <ErrorBox error={error} />
    </form>
  )
}

function status(k: KeyInfo): string {
  if (k.revokedAt) return 'revoked'
  if (k.expiresAt && Date.parse(k.expiresAt) <= Date.now()) return 'expired'
  return 'active'
}

export function Keys() {
  const keys = useKeys()
  const list = useLoad(() => getJson<{ data: KeyInfo[] }>('/admin/keys', 'admin').then((r) => r.data), [keys.adminKey])
  const [secret, setSecret] = useState<{ name: string; key: string }>()
  const [editing, setEditing] = useState<string>()
  const [confirming, setConfirming] = useState<string>()
  const [error, setError] = useState<Error>()

  async function act(path: string, method: string, then?: (body: KeyInfo & { key?: string }) => void) {
    setError(undefined)
    try {
      const res = await call(path, { auth: 'admin', method })
      then?.((await res.json()) as KeyInfo & { key?: string })
      list.reload()
    } catch (err) {
      setError(err as Error)
    }
  }

  return (
    <>
      <h2>Keys</h2>
      <AdminKeyNeeded>
        {secret && <Secret name={secret.name} secret={secret.key} onDone={() => setSecret(undefined)} />}
        <div class="row">
          <button type="button" class="secondary" onClick={list.reload}>
            Refresh
          </button>
          <span class="muted">Spend counts for keys that have a budget, in the current period.</span>
        </div>
        <ErrorBox error={list.error ?? error} />
        <div class="table-wrap">
          <table data-testid="keys-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Key</th>
                <th>Status</th>
                <th>Budget</th>
                <th>Spent</th>
                <th>Reserved</th>
                <th>Limits</th>
                <th>Models</th>
                <th>Min. level</th>
                <th>Last used</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data?.map((k) => (
                <tr key={k.id} data-key-name={k.name}>
                  <td>{k.name}</td>
                  <td>
                    <code title={k.id}>{k.prefix}…</code>
                  </td>
                  <td>{status(k)}</td>
                  <td>
                    {k.budget === null ? 'none' : format0G(k.budget)}
                    {k.budgetPeriod && <span class="muted"> {k.budgetPeriod}</span>}
                  </td>
                  <td data-testid="key-spent">{format0G(k.spent)}</td>
                  <td>{format0G(k.reserved)}</td>
                  <td>
                    {k.rpm ?? '∞'} req/min, {k.tpm ?? '∞'} tok/min
                  </td>
                  <td>{k.allowedModels.length ? k.allowedModels.join(', ') : 'all'}</td>
                  <td>
                    {k.minVerification}
                    {k.teeOnly && ', TEE only'}
                  </td>
                  <td>{formatTime(k.lastUsedAt)}</td>
                  <td>
                    <div class="actions">
                      {!k.revokedAt && (
                        <>
                          <button
                            type="button"
                            class="secondary"
                            onClick={() => setEditing(editing === k.id ? undefined : k.id)}
                          >
                            Edit
                          </button>
                          <button
                            type="button"
                            class="secondary"
                            onClick={() =>
                              act(
                                `/admin/keys/${k.id}/rotate`,
                                'POST',
                                (b) => b.key && setSecret({ name: k.name, key: b.key }),
                              )
                            }
                          >
                            Rotate
                          </button>
                          {confirming === k.id ? (
                            <button type="button" class="danger" onClick={() => act(`/admin/keys/${k.id}`, 'DELETE')}>
                              Confirm revoke
                            </button>
                          ) : (
                            <button type="button" class="secondary" onClick={() => setConfirming(k.id)}>
                              Revoke
                            </button>
                          )}
                        </>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {list.data?.length === 0 && <p class="muted">No keys yet: create one below.</p>}
        {editing &&
          list.data
            ?.filter((k) => k.id === editing)
            .map((k) => (
              <section class="card" key={k.id}>
                <h3>Limits of {k.name}</h3>
                <EditLimits
                  info={k}
                  onSaved={() => {
                    setEditing(undefined)
                    list.reload()
                  }}
                />
              </section>
            ))}
        <CreateKey
          onCreated={(k) => {
            setSecret({ name: k.name, key: k.key })
            list.reload()
          }}
        />
      </AdminKeyNeeded>
    </>
  )
}
