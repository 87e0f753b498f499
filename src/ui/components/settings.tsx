import { useEffect, useState } from 'preact/hooks'
import { saveKeys, useKeys } from '../session.ts'

/** Where the keys are entered: kept in this tab's sessionStorage only. */
export function Settings() {
  const keys = useKeys()
  const [apiKey, setApiKey] = useState(keys.apiKey)
  const [adminKey, setAdminKey] = useState(keys.adminKey)
  const [open, setOpen] = useState(!keys.apiKey && !keys.adminKey)
  // Keys saved elsewhere (a new key's "use in the playground") show here too.
  useEffect(() => {
    setApiKey(keys.apiKey)
    setAdminKey(keys.adminKey)
  }, [keys.apiKey, keys.adminKey])
  const status = [keys.apiKey ? 'API key set' : 'no API key', keys.adminKey ? 'admin key set' : 'no admin key']
  return (
    <details class="settings" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>Keys: {status.join(', ')}</summary>
      <form
        onSubmit={(e) => {
          e.preventDefault()
          saveKeys({ apiKey, adminKey })
          setOpen(false)
        }}
      >
        <label>
          API key
          <input
            type="password"
            autocomplete="off"
            placeholder="sk-… (the dev stack's: sk-zg-dev)"
            value={apiKey}
            onInput={(e) => setApiKey(e.currentTarget.value)}
          />
        </label>
        <label>
          Admin key
          <input
            type="password"
            autocomplete="off"
            placeholder="for Providers, Account, Keys, Usage"
            value={adminKey}
            onInput={(e) => setAdminKey(e.currentTarget.value)}
          />
        </label>
        <div class="row">
          <button type="submit">Save keys</button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setApiKey('')
              setAdminKey('')
              saveKeys({ apiKey: '', adminKey: '' })
            }}
          >
            Forget keys
          </button>
        </div>
        <p class="muted">Kept in this tab only (sessionStorage) and sent only to this gateway.</p>
      </form>
    </details>
  )
}
