import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { RateLimiter } from '../billing/rate-limits.ts'
import { worstCaseFee as billingWorstCase, DEFAULT_MAX_OUTPUT_TOKENS } from '../billing/worst-case-fee.ts'
import type { CatalogEntry } from '../providers/catalog.ts'
import { ApiKeyStore } from './http/api-keys.ts'
import { type AdmissionRequest, KeyAdmission } from './key-admission.ts'

const worstCaseFee = (r: AdmissionRequest, prices: { inputPrice: bigint; outputPrice: bigint }) =>
  billingWorstCase(r.endpoint, r.json, r.bodyBytes, prices)

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const entry = (verifiability: string, inputPrice: bigint, outputPrice: bigint) =>
  ({ provider: `0x${verifiability}`, verifiability, inputPrice, outputPrice }) as unknown as CatalogEntry

describe('worstCaseFee', () => {
  const prices = { inputPrice: 2n, outputPrice: 10n }
  const messages = [{ role: 'user', content: 'hi' }]
  const promptBytes = BigInt(JSON.stringify(messages).length)
  it('chat: prompt bytes × input price + max tokens × n × output price, else the default cap', () => {
    const req = (json: Record<string, unknown>) => ({ model: 'm', endpoint: 'chat/completions', json, bodyBytes: 0 })
    expect(worstCaseFee(req({ messages, max_tokens: 7 }), prices)).toBe(promptBytes * 2n + 70n)
    expect(worstCaseFee(req({ messages, max_completion_tokens: 7, n: 3 }), prices)).toBe(promptBytes * 2n + 210n)
    expect(worstCaseFee(req({ messages }), prices)).toBe(promptBytes * 2n + DEFAULT_MAX_OUTPUT_TOKENS * 10n)
  })
  it('images, speech and uploads as estimateFee', () => {
    expect(worstCaseFee({ model: 'm', endpoint: 'images/generations', json: { n: 3 }, bodyBytes: 0 }, prices)).toBe(30n)
    expect(
      worstCaseFee({ model: 'm', endpoint: 'audio/speech', json: { max_duration: 500 }, bodyBytes: 0 }, prices),
    ).toBe(1200n)
    expect(
      worstCaseFee({ model: 'm', endpoint: 'audio/transcriptions', json: undefined, bodyBytes: 64_000 }, prices),
    ).toBe(4n)
  })
})

describe('KeyAdmission', () => {
  function setup(settings: Parameters<ApiKeyStore['create']>[1]) {
    const dir = mkdtempSync(join(tmpdir(), 'zg-admission-'))
    dirs.push(dir)
    const store = new ApiKeyStore(join(dir, 'gateway.sqlite'))
    const created = store.create('k', settings)
    const identity = store.verify(created.key)!
    return { store, identity, admission: new KeyAdmission(store.budgets, new RateLimiter()) }
  }
  const req = { model: 'm', endpoint: 'chat/completions', json: { messages: [], max_tokens: 10 }, bodyBytes: 0 }

  it('reserves at the dearest of the candidates it is given (the requirement narrowed them before)', async () => {
    const { store, identity, admission } = setup({ minVerification: 'L1', budget: 10_000n })
    const checked = (await admission.admission(identity, req))!
    const allowed = await checked.admission.admit([entry('TeeML', 1n, 20n), entry('ZKML', 1n, 30n)])
    expect(allowed.map((e) => e.verifiability)).toEqual(['TeeML', 'ZKML'])
    expect(store.get(identity.id)?.reserved).toBe(String(2n + 300n))
    await checked.admission.settle(123n, { kind: 'tokens', input: 1n, output: 2n })
    await checked.admission.release() // after a settle: nothing more
    expect(store.get(identity.id)).toMatchObject({ reserved: '0', spent: '123' })
    store.close()
  })

  it('a released call costs nothing; an over-budget call is a 429 insufficient_quota', async () => {
    const { store, identity, admission } = setup({ budget: 150n })
    const a = (await admission.admission(identity, req))!
    await a.admission.admit([entry('TeeML', 1n, 10n)])
    await a.admission.release()
    expect(store.get(identity.id)).toMatchObject({ reserved: '0', spent: '0' })
    const b = (await admission.admission(identity, { ...req, json: { messages: [], max_tokens: 1000 } }))!
    await expect(b.admission.admit([entry('TeeML', 1n, 10n)])).rejects.toThrow(
      expect.objectContaining({ status: 429, code: 'insufficient_quota' }),
    )
    store.close()
  })
})
