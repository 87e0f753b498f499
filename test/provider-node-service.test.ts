import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeService } from '../src/chain/actions/remove-service.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { type Marketplace, startMarketplace } from './support/marketplace.ts'

let m: Marketplace

beforeAll(async () => {
  // The node trusts its service read for 200 ms: a removal shows within the test.
  m = await startMarketplace({ serviceCacheTtlMs: 200 })
})
afterAll(async () => {
  await m?.stop()
})

async function chat() {
  const res = await fetch(`${m.node.url}/v1/proxy/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await m.token()}` },
    body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'Hello' }] }),
  })
  return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } }
}

describe('provider node: its own service on-chain', () => {
  it('answers a 503 that says so, and bills nothing, once its service is removed from the chain', async () => {
    expect((await chat()).status).toBe(200)
    const billed = m.node.store.records().length
    await removeService(m.provider)
    await new Promise((r) => setTimeout(r, 300))
    const { status, body } = await chat()
    expect(status).toBe(503)
    expect(body.error).toMatchObject({ code: 'service_not_registered' })
    expect(body.error.message).toMatch(/no service registered on-chain/)
    expect(m.node.store.records()).toHaveLength(billed)
  })
})
