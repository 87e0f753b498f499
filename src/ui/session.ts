import { useEffect, useState } from 'preact/hooks'

/** The keys the UI calls the gateway with: an API key for /v1, the admin key for /admin. */
export type Keys = { apiKey: string; adminKey: string }

// sessionStorage: gone when the tab closes, never sent anywhere but in an Authorization header, never in a URL.
const STORAGE: Record<keyof Keys, string> = { apiKey: 'zg-gateway.api-key', adminKey: 'zg-gateway.admin-key' }
const listeners = new Set<(keys: Keys) => void>()

export function readKeys(): Keys {
  return {
    apiKey: sessionStorage.getItem(STORAGE.apiKey) ?? '',
    adminKey: sessionStorage.getItem(STORAGE.adminKey) ?? '',
  }
}

/** Stores the keys (an empty one is removed) and tells every component that reads them. */
export function saveKeys(keys: Partial<Keys>): void {
  for (const name of Object.keys(keys) as Array<keyof Keys>) {
    const value = keys[name]?.trim() ?? ''
    if (value) sessionStorage.setItem(STORAGE[name], value)
    else sessionStorage.removeItem(STORAGE[name])
  }
  const now = readKeys()
  for (const listener of listeners) listener(now)
}

/** The current keys, re-rendering when they change. */
export function useKeys(): Keys {
  const [keys, setKeys] = useState(readKeys)
  useEffect(() => {
    listeners.add(setKeys)
    return () => listeners.delete(setKeys)
  }, [])
  return keys
}
