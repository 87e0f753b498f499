import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { ApiKeyStore, sha256 } from './api-keys.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
const file = () => {
  const dir = mkdtempSync(join(tmpdir(), 'zg-keys-'))
  dirs.push(dir)
  return join(dir, 'gateway.sqlite')
}

describe('ApiKeyStore policies', () => {
  it('migrates a database from before policies, keeping its keys', () => {
    const path = file()
    const old = new DatabaseSync(path)
    old.exec(`CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, prefix TEXT NOT NULL,
      key_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, last_used_at INTEGER, revoked_at INTEGER)`)
    old
      .prepare('INSERT INTO api_keys (id, name, prefix, key_hash, created_at) VALUES (?, ?, ?, ?, ?)')
      .run('key_old', 'old', 'sk-zg-ol', sha256('sk-zg-old-secret').toString('hex'), 1)
    old.close()
    const store = new ApiKeyStore(path)
    expect(store.verify('sk-zg-old-secret')).toMatchObject({
      id: 'key_old',
      policy: { budget: null, allowedModels: [] },
    })
    expect(store.update('key_old', { budget: 5n, rpm: 3 })).toMatchObject({ budget: '5', rpm: 3, spent: '0' })
    store.close()
    // Opening again finds the columns there: no second ALTER.
    new ApiKeyStore(path).close()
  })

  it('refuses expired keys and says why; rotate keeps the id and drops the old secret', () => {
    let now = 1_000
    const store = new ApiKeyStore(file(), { now: () => now })
    const k = store.create('k', { expiresAt: 2_000, metadata: { team: 'x' } })
    expect(store.verify(k.key)?.id).toBe(k.id)
    now = 2_000
    expect(store.verify(k.key)).toBeUndefined()
    expect(store.refusal(k.key)).toBe('expired')
    store.update(k.id, { expiresAt: null })
    const rotated = store.rotate(k.id)!
    expect(rotated.id).toBe(k.id)
    expect(store.verify(k.key)).toBeUndefined()
    expect(store.verify(rotated.key)?.id).toBe(k.id)
    expect(store.get(k.id)?.metadata).toEqual({ team: 'x' })
    store.revoke(k.id)
    expect(store.refusal(rotated.key)).toBe('revoked')
    expect(() => store.update(k.id, { budgetPeriod: 'hourly' as never })).toThrow(RangeError)
    store.close()
  })
})
