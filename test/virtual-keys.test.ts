import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_CHAT_MODEL, DEV_IMAGE_MODEL, DEV_TTS_MODEL } from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'

const run = promisify(execFile)
let stack: Awaited<ReturnType<typeof startTestStack>>

type KeyJson = { id: string; key: string; budget: string | null; spent: string; reserved: string; rpm: number | null }

async function admin(method: string, path: string, body?: unknown) {
  const res = await fetch(`${stack.gateway.url}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.adminKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: res.status, json: (await res.json()) as Record<string, unknown> }
}

async function createKey(settings: Record<string, unknown>): Promise<KeyJson> {
  const r = await admin('POST', '/keys', { name: 'test', ...settings })
  expect(r.status).toBe(201)
  return r.json as unknown as KeyJson
}

const chat = (key: string, extra: Record<string, unknown> = {}) =>
  fetch(`${stack.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hello' }], ...extra }),
  })

async function cli(args: string[]) {
  try {
    const { stdout } = await run(process.execPath, ['bin/zg-gateway.js', ...args, '--data-dir', stack.dataDir], {
      env: { PATH: process.env.PATH ?? '' },
    })
    return { code: 0, stdout }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout + e.stderr }
  }
}

beforeAll(async () => {
  stack = await startTestStack()
}, 60_000)
afterAll(async () => {
  await stack?.dispose()
})

describe('budgets', () => {
  it('200 concurrent calls never spend past the budget; refusals cost nothing; spent = recorded fees', async () => {
    // max_tokens 16: the worst case of one call is ~4e12 neuron at the dev TEE chat prices; room for about 3 at once.
    const key = await createKey({ budget: '0.000012' })
    const budget = 12_000_000_000_000n
    const before = stack.backend.stats.requests
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const stream = i % 2 === 1
        const res = await chat(key.key, { max_tokens: 16, stream })
        const text = await res.text()
        return { status: res.status, text, headers: res.headers }
      }),
    )
    const ok = results.filter((r) => r.status === 200)
    const refused = results.filter((r) => r.status !== 200)
    expect(ok.length).toBeGreaterThan(0)
    expect(refused.length).toBeGreaterThan(0)
    for (const r of refused) {
      expect(r.status).toBe(429)
      expect(JSON.parse(r.text).error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' })
      expect(JSON.parse(r.text).error.message).toMatch(/0G remaining/)
      expect(r.headers.get('x-should-retry')).toBe('false')
    }
    // Only admitted calls reached a provider.
    expect(stack.backend.stats.requests - before).toBe(ok.length)
    const calls = (await stack.gateway.core.ledger.calls({ limit: 10_000 })).filter((c) => c.apiKeyId === key.id)
    expect(calls).toHaveLength(ok.length)
    const total = calls.reduce((sum, c) => sum + c.fee, 0n)
    expect(total).toBeLessThanOrEqual(budget)
    expect(total).toBeGreaterThan(0n)
    const shown = await admin('GET', `/keys/${key.id}`)
    expect(shown.json).toMatchObject({ spent: total.toString(), reserved: '0' })
  }, 120_000)

  it('a budgeted call without max_tokens goes out capped at what it reserved, and says so when that overflows', async () => {
    const key = await createKey({ budget: '1' })
    // About 5,000 prompt tokens: room in the dev model's 8,192 for an answer, not for 4,096 more.
    const long = [{ role: 'user', content: 'word '.repeat(2500) }]
    const capped = await chat(key.key, { messages: long })
    expect(capped.status).toBe(400)
    const { error } = (await capped.json()) as { error: Record<string, string> }
    expect(error).toMatchObject({ code: 'context_length_exceeded', param: 'max_tokens' })
    expect(error.message).toMatch(/has a budget, so a call without max_tokens is capped at 4096 output tokens/)
    // Nothing was spent on it; the same prompt with its own cap, or on a key without a budget, is served.
    expect((await admin('GET', `/keys/${key.id}`)).json).toMatchObject({ spent: '0', reserved: '0' })
    expect((await chat(key.key, { messages: long, max_tokens: 64 })).status).toBe(200)
    expect((await chat((await createKey({})).key, { messages: long })).status).toBe(200)
  })

  it('images and speech reserve their worst case too: concurrent calls stay within the budget', async () => {
    // Dev prices: 0.01 0G an image; room for three.
    const key = await createKey({ budget: '0.035' })
    const post = (path: string, body: unknown) =>
      fetch(`${stack.baseURL}/${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    const answers = await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => post('images/generations', { model: DEV_IMAGE_MODEL, prompt: `p${i}` })),
      ...Array.from({ length: 4 }, () =>
        post('audio/speech', { model: DEV_TTS_MODEL, voice: 'nova', input: 'Hello.', response_format: 'wav' }),
      ),
    ])
    const statuses = answers.map((r) => r.status)
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0)
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true)
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0)
    const calls = (await stack.gateway.core.ledger.calls({ limit: 10_000 })).filter((c) => c.apiKeyId === key.id)
    expect(calls).toHaveLength(statuses.filter((s) => s === 200).length)
    const total = calls.reduce((sum, c) => sum + c.fee, 0n)
    expect(total).toBeLessThanOrEqual(35_000_000_000_000_000n)
    expect((await admin('GET', `/keys/${key.id}`)).json).toMatchObject({ spent: total.toString(), reserved: '0' })
  })

  it('the openai client does not retry insufficient_quota', async () => {
    const key = await createKey({ budget: '0' })
    let fetches = 0
    const client = new OpenAI({
      baseURL: stack.baseURL,
      apiKey: key.key,
      maxRetries: 2,
      fetch: (url, init) => {
        fetches++
        return fetch(url, init)
      },
    })
    const err = await client.chat.completions
      .create({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.RateLimitError)
    expect(err.code).toBe('insufficient_quota')
    expect(fetches).toBe(1)
  })
})

describe('rate limits', () => {
  it('RPM: 429 rate_limit_exceeded with Retry-After and x-ratelimit headers, seen by the openai client', async () => {
    const key = await createKey({ rpm: 2, tpm: 100_000 })
    const client = new OpenAI({ baseURL: stack.baseURL, apiKey: key.key, maxRetries: 0 })
    const first = await client.chat.completions
      .create({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse()
    expect(first.response.headers.get('x-ratelimit-limit-requests')).toBe('2')
    expect(first.response.headers.get('x-ratelimit-remaining-requests')).toBe('1')
    expect(first.response.headers.get('x-ratelimit-limit-tokens')).toBe('100000')
    expect(first.response.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+s$/)
    await client.chat.completions.create({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }] })
    const err = await client.chat.completions
      .create({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e)
    expect(err).toBeInstanceOf(OpenAI.RateLimitError)
    expect(err.code).toBe('rate_limit_exceeded')
    const retryAfter = Number(err.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThan(0)
    expect(retryAfter).toBeLessThanOrEqual(60)
    expect(err.headers.get('x-ratelimit-remaining-requests')).toBe('0')
    expect(err.headers.get('x-ratelimit-remaining-tokens')).not.toBeNull()
    expect(err.headers.get('x-ratelimit-reset-tokens')).toMatch(/^\d+s$/)
  })
})

describe('key policy', () => {
  it('allowed models count by the name the client sends', async () => {
    const key = await createKey({ allowed_models: ['gpt-4o-mini'] })
    expect((await chat(key.key, { model: 'gpt-4o-mini' })).status).toBe(200)
    const refused = await chat(key.key)
    expect(refused.status).toBe(403)
    expect(((await refused.json()) as { error: Record<string, unknown> }).error.code).toBe('model_not_allowed')
  })

  it('a key requiring L1 is never routed to the standard provider', async () => {
    const key = await createKey({ min_verification: 'L1' })
    const tee = stack.nodes.find((n) => n.spec.model === DEV_CHAT_MODEL && n.spec.verifiability === 'TeeML')!
    for (let i = 0; i < 12; i++) {
      const res = await chat(key.key)
      expect(res.status).toBe(200)
      expect(res.headers.get('x-zg-provider')?.toLowerCase()).toBe(tee.address.toLowerCase())
      await res.text()
    }
  })

  it('expired and revoked keys get 401', async () => {
    const past = await createKey({ expires_at: new Date(Date.now() - 1000).toISOString() })
    const expired = await chat(past.key)
    expect(expired.status).toBe(401)
    expect(((await expired.json()) as { error: Record<string, unknown> }).error).toMatchObject({
      type: 'authentication_error',
      message: /expired/,
    })
    const future = await createKey({ expires_at: new Date(Date.now() + 3600_000).toISOString() })
    expect((await chat(future.key)).status).toBe(200)
    expect((await admin('DELETE', `/keys/${future.id}`)).status).toBe(200)
    const revoked = await chat(future.key)
    expect(revoked.status).toBe(401)
    expect(((await revoked.json()) as { error: Record<string, unknown> }).error.message).toMatch(/revoked/)
  })

  it('rotate: the old secret is refused at once, the new one works, budget and spend kept', async () => {
    const key = await createKey({ budget: '1' })
    expect((await chat(key.key)).status).toBe(200)
    const spent = ((await admin('GET', `/keys/${key.id}`)).json as unknown as KeyJson).spent
    expect(BigInt(spent)).toBeGreaterThan(0n)
    const rotated = await admin('POST', `/keys/${key.id}/rotate`)
    expect(rotated.status).toBe(200)
    const fresh = rotated.json as unknown as KeyJson
    expect(fresh.key).not.toBe(key.key)
    expect(fresh).toMatchObject({ id: key.id, budget: '1000000000000000000', spent })
    expect((await chat(key.key)).status).toBe(401)
    expect((await chat(fresh.key)).status).toBe(200)
  })

  it('the admin API validates, updates and lists', async () => {
    const bad = await admin('POST', '/keys', { name: 'x', budget_period: 'hourly' })
    expect(bad.status).toBe(400)
    const key = await createKey({ metadata: { team: 'a' } })
    const patched = await admin('PATCH', `/keys/${key.id}`, { rpm: 5, budget: '0.5', budget_period: 'weekly' })
    expect(patched.json).toMatchObject({ rpm: 5, budget: '500000000000000000', budgetPeriod: 'weekly' })
    const list = await admin('GET', '/keys')
    expect((list.json.data as { id: string }[]).some((k) => k.id === key.id)).toBe(true)
    expect((await admin('GET', '/keys/key_nope')).status).toBe(404)
  })
})

describe('routing and timeouts per key', () => {
  it('a key pinned to a provider is served by it; its timeouts and routing are validated and shown', async () => {
    const standard = stack.nodes.find((n) => n.spec.name === 'chat-standard')!.address
    const key = await createKey({
      routing: { provider: standard, allow_fallbacks: false },
      timeouts: { first_byte_ms: 5000, total_ms: 60000 },
    })
    const res = await chat(key.key)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-zg-provider')).toBe(standard)
    const shown = await admin('GET', `/keys/${key.id}`)
    expect(shown.json).toMatchObject({
      routing: { provider: standard, allowFallbacks: false },
      timeouts: { firstByteMs: 5000, totalMs: 60000 },
    })
    // A request's own header still steers it: the TEE provider, for this call.
    const tee = stack.nodes.find((n) => n.spec.name === 'chat-tee')!.address
    const steered = await fetch(`${stack.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json', 'x-0g-provider-address': tee },
      body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hello' }] }),
    })
    expect(steered.headers.get('x-zg-provider')).toBe(tee)
    for (const bad of [
      { routing: { sort: 'cheapest' } },
      { routing: { pin: standard } },
      { timeouts: { total_ms: -1 } },
    ]) {
      const r = await admin('POST', '/keys', { name: 'bad', ...bad })
      expect(r.status, JSON.stringify(bad)).toBe(400)
    }
  })
})

describe('receipts', () => {
  it('a key reads only its own receipts; the admin key reads all', async () => {
    const a = await createKey({})
    const b = await createKey({})
    const res = await chat(a.key)
    await res.text()
    const id = res.headers.get('x-request-id')!
    const read = (key: string) =>
      fetch(`${stack.baseURL}/receipts/${id}`, { headers: { authorization: `Bearer ${key}` } })
    expect((await read(a.key)).status).toBe(200)
    const other = await read(b.key)
    expect(other.status).toBe(404)
    expect(((await other.json()) as { error: Record<string, unknown> }).error.code).toBe('receipt_not_found')
    const byAdmin = await admin('GET', `/receipts/${id}`)
    expect(byAdmin.status).toBe(200)
    expect(byAdmin.json.id).toBe(id)
  })
})

describe('keys CLI', () => {
  it('create with budget and limits, show, update, rotate, list --json', async () => {
    const created = await cli([
      'keys',
      'create',
      '--name',
      'cli',
      '--budget',
      '0.25',
      '--budget-period',
      'daily',
      '--rpm',
      '10',
      '--models',
      'gpt-4o-mini',
      '--json',
    ])
    expect(created.code).toBe(0)
    const key = JSON.parse(created.stdout) as KeyJson & { allowedModels: string[] }
    expect(key).toMatchObject({
      budget: '250000000000000000',
      budgetPeriod: 'daily',
      rpm: 10,
      allowedModels: ['gpt-4o-mini'],
    })
    expect((await chat(key.key, { model: 'gpt-4o-mini' })).status).toBe(200)
    const shown = JSON.parse((await cli(['keys', 'show', key.id, '--json'])).stdout)
    expect(shown).toMatchObject({ id: key.id, rpm: 10 })
    expect(BigInt(shown.spent)).toBeGreaterThan(0n)
    const updated = JSON.parse(
      (await cli(['keys', 'update', key.id, '--tpm', '1000', '--budget', 'none', '--json'])).stdout,
    )
    expect(updated).toMatchObject({ tpm: 1000, budget: null, rpm: 10 })
    const rotated = JSON.parse((await cli(['keys', 'rotate', key.id, '--json'])).stdout)
    expect(rotated.id).toBe(key.id)
    expect(rotated.key).not.toBe(key.key)
    expect((await chat(rotated.key, { model: 'gpt-4o-mini' })).status).toBe(200)
    const list = JSON.parse((await cli(['keys', 'list', '--json'])).stdout) as { id: string }[]
    expect(list.some((k) => k.id === key.id)).toBe(true)
    expect((await cli(['keys', 'update', key.id, '--budget-period', 'hourly'])).code).not.toBe(0)
  }, 60_000)
})
