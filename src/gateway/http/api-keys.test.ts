import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ApiKeyStore } from './api-keys.ts'

const dirs: string[] = []
function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), 'zg-keys-'))
  dirs.push(dir)
  return join(dir, 'gateway.db')
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('ApiKeyStore', () => {
  it('creates keys in the sk-zg- format and verifies them', () => {
    const store = new ApiKeyStore(':memory:')
    const created = store.create('ci')
    expect(created.key).toMatch(/^sk-zg-[0-9A-Za-z]{32}$/)
    expect(created.name).toBe('ci')
    expect(new Date(created.createdAt).toISOString()).toBe(created.createdAt)
    expect(store.verify(created.key)).toMatchObject({ id: created.id, name: 'ci' })
    expect(store.verify(`${created.key}x`)).toBeUndefined()
    expect(store.verify('sk-zg-nope')).toBeUndefined()
    expect(store.create('ci').key).not.toBe(created.key)
  })

  it('lists keys by prefix, never by key', () => {
    const store = new ApiKeyStore(':memory:')
    const a = store.create('a')
    const b = store.create('b')
    const list = store.list()
    expect(list.map((k) => k.id)).toEqual([a.id, b.id])
    expect(list[0]).toMatchObject({
      id: a.id,
      name: 'a',
      prefix: a.key.slice(0, 8),
      createdAt: a.createdAt,
      lastUsedAt: null,
      revokedAt: null,
    })
    expect(JSON.stringify(list)).not.toContain(a.key)
  })

  it('revokes keys at once in the same process', () => {
    const store = new ApiKeyStore(':memory:')
    const created = store.create('gone')
    expect(store.verify(created.key)).toBeDefined()
    expect(store.revoke(created.id)).toBe(true)
    expect(store.verify(created.key)).toBeUndefined()
    expect(store.list()[0]?.revokedAt).not.toBeNull()
    expect(store.revoke(created.id)).toBe(false)
    expect(store.revoke('key_unknown')).toBe(false)
  })

  it('remembers a verified key by itself within the TTL: a revocation elsewhere bites after it', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    const path = tempDb()
    const gateway = new ApiKeyStore(path, { cacheTtlMs: 60_000, now: () => now })
    const cli = new ApiKeyStore(path)
    const created = cli.create('remembered')
    expect(gateway.verify(created.key)).toMatchObject({ id: created.id, name: 'remembered' })
    // Revoked by another process: this one learns of it only from the database.
    cli.revoke(created.id)
    expect(gateway.verify(created.key)).toMatchObject({ id: created.id, name: 'remembered' })
    expect(gateway.verify(`${created.key.slice(0, -1)}x`)).toBeUndefined()
    gateway.close()
    cli.close()
  })

  it('honours a revocation by another process within the cache TTL', async () => {
    const path = tempDb()
    const gateway = new ApiKeyStore(path, { cacheTtlMs: 50 })
    const cli = new ApiKeyStore(path)
    const created = cli.create('shared')
    expect(gateway.verify(created.key)).toBeDefined()
    cli.revoke(created.id)
    await new Promise((resolve) => setTimeout(resolve, 80))
    expect(gateway.verify(created.key)).toBeUndefined()
    gateway.close()
    cli.close()
  })

  it('writes lastUsedAt at most once per interval', () => {
    let now = Date.parse('2026-01-01T00:00:00Z')
    const store = new ApiKeyStore(':memory:', { now: () => now })
    const created = store.create('busy')
    store.verify(created.key)
    expect(store.list()[0]?.lastUsedAt).toBe('2026-01-01T00:00:00.000Z')
    now += 30_000
    store.verify(created.key)
    expect(store.list()[0]?.lastUsedAt).toBe('2026-01-01T00:00:00.000Z')
    now += 31_000
    store.verify(created.key)
    expect(store.list()[0]?.lastUsedAt).toBe('2026-01-01T00:01:01.000Z')
  })

  it('keeps only hashes in the database file', () => {
    const path = tempDb()
    const store = new ApiKeyStore(path)
    const created = store.create('secret-holder')
    store.verify(created.key)
    store.close()
    const reopened = new ApiKeyStore(path)
    expect(reopened.verify(created.key)).toMatchObject({ id: created.id, name: 'secret-holder' })
    reopened.close()
    const dir = join(path, '..')
    const files = readdirSync(dir)
    expect(files).toContain('gateway.db')
    for (const file of files) {
      const bytes = readFileSync(join(dir, file))
      expect(bytes.includes(created.key)).toBe(false)
      expect(bytes.includes(created.key.slice(6))).toBe(false)
    }
    expect(readFileSync(path).includes('secret-holder')).toBe(true)
  })

  it('accepts static keys from config without storing them', () => {
    const path = tempDb()
    const store = new ApiKeyStore(path)
    const identity = store.addStaticKey('sk-from-env-1234567890', 'env')
    expect(store.verify('sk-from-env-1234567890')).toEqual(identity)
    expect(identity.name).toBe('env')
    expect(store.verify('sk-from-env-123456789')).toBeUndefined()
    expect(store.list()).toEqual([])
    store.close()
    expect(readFileSync(path).includes('sk-from-env')).toBe(false)
  })
})
