import { createRequire } from 'node:module'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { json } from './support/json.ts'
import { type Marketplace, startMarketplace } from './support/marketplace.ts'

// The official SDK (CommonJS) and its peer ethers, exactly as a 0G user runs them.
const require = createRequire(import.meta.url)
const { createZGComputeNetworkBroker } = require('@0gfoundation/0g-compute-ts-sdk')
const { JsonRpcProvider, Wallet } = require('ethers')

let m: Marketplace

beforeAll(async () => {
  m = await startMarketplace()
})
afterAll(async () => {
  await m?.stop()
})

describe('interop with the official 0G SDK (@0gfoundation/0g-compute-ts-sdk 0.9.0)', () => {
  it('its session token is accepted by our node, and its processResponse verifies our signature', async () => {
    const wallet = new Wallet(
      anvilPrivateKey(1),
      new JsonRpcProvider(m.anvil.rpcUrl, undefined, { staticNetwork: true }),
    )
    const broker = await createZGComputeNetworkBroker(wallet, m.contracts.ledger, m.contracts.inference)
    const provider = m.provider.walletClient.account.address

    const { endpoint, model } = await broker.inference.getServiceMetadata(provider)
    expect(endpoint).toBe(`${m.node.url}/v1/proxy`)
    expect(model).toBe(DEV_CHAT_MODEL)

    const headers = await broker.inference.getRequestHeaders(provider)
    expect(headers.Authorization).toMatch(/^Bearer app-sk-/)
    const res = await fetch(`${endpoint}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hello from the official SDK' }] }),
    })
    expect(res.status).toBe(200)
    const body = await json(res)
    const chatID = res.headers.get('ZG-Res-Key') ?? body.id
    expect(await broker.inference.processResponse(provider, chatID, JSON.stringify(body.usage))).toBe(true)
    // A key the node never issued does not verify.
    await expect(broker.inference.processResponse(provider, crypto.randomUUID())).rejects.toThrow()
  })
})
