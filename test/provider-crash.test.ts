import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getAccount } from '../src/chain/actions/get-account.ts'
import { anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { type Marketplace, startMarketplace } from './support/marketplace.ts'
import { chainArgsOf, type ProviderProcess, spawnProviderNode } from './support/provider-process.ts'

let m: Marketplace
let chainArgs: string[]
const env = () => ({ PATH: process.env.PATH ?? '', ZG_PRIVATE_KEY: anvilPrivateKey(2) })

/** The provider node as its own process, as an operator runs it. */
function serveNode(port = 0): Promise<ProviderProcess> {
  return spawnProviderNode(m, { backends: [m.backend.url], dataDir: m.dataDir, port })
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string }> {
  const proc = spawn(process.execPath, ['bin/zg-gateway.js', ...args, ...chainArgs], {
    env: env(),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let stdout = ''
  proc.stdout.on('data', (d) => {
    stdout += d
  })
  return new Promise((resolve) => proc.once('exit', (code) => resolve({ code, stdout })))
}

beforeAll(async () => {
  m = await startMarketplace({ startNode: false })
  chainArgs = chainArgsOf(m)
})
afterAll(async () => {
  await m?.stop()
})

describe('provider node crash safety', () => {
  it('a kill -9 between delivery and settlement loses no billed record', async () => {
    let node = await serveNode()
    const port = new URL(node.url).port
    const reg = await cli([
      'provider',
      'register',
      '--url',
      node.url,
      '--model',
      DEV_CHAT_MODEL,
      '--input-price',
      '1000000000',
      '--output-price',
      '2000000000',
      '--insecure-dev-signer',
      '--json',
      '--data-dir',
      m.dataDir,
    ])
    expect(reg.code).toBe(0)
    // The CLI has the owner acknowledge only on the devnet; on this bare chain the test plays the owner.
    const { acknowledgeTEESignerByOwner } = await import('../src/chain/actions/acknowledge-tee-signer-by-owner.ts')
    await acknowledgeTEESignerByOwner(m.owner, { provider: m.provider.walletClient.account.address })

    let billed = 0n
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${node.url}/v1/proxy/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await m.token()}` },
        body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: `paid request ${i}` }] }),
      })
      const body = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } }
      expect(res.status).toBe(200)
      billed +=
        BigInt(body.usage.prompt_tokens) * 1_000_000_000n + BigInt(body.usage.completion_tokens) * 2_000_000_000n
    }
    node.proc.kill('SIGKILL')
    await new Promise((r) => node.proc.once('exit', r))

    // Restarted on the same data dir, the node still knows what it is owed, and settles exactly that.
    node = await serveNode(Number(port))
    const user = m.user.walletClient.account.address
    const provider = m.provider.walletClient.account.address
    const unsettled = await fetch(`${node.url}/v1/user/${user}/unsettledfee`, {
      headers: { authorization: `Bearer ${await m.token()}` },
    })
    expect(((await unsettled.json()) as { unsettledFee: string }).unsettledFee).toBe(billed.toString())
    node.proc.kill('SIGTERM')
    await new Promise((r) => node.proc.once('exit', r))

    const before = (await getAccount(m.user, { user, provider }))!.balance
    const settled = await cli(['provider', 'settle', '--insecure-dev-signer', '--json', '--data-dir', m.dataDir])
    expect(settled.code).toBe(0)
    expect(JSON.parse(settled.stdout).settled).toBe(billed.toString())
    const after = (await getAccount(m.user, { user, provider }))!.balance
    expect(before - after).toBe(billed)

    const again = await cli(['provider', 'settle', '--insecure-dev-signer', '--json', '--data-dir', m.dataDir])
    expect(JSON.parse(again.stdout).settled).toBe('0')
    expect((await getAccount(m.user, { user, provider }))!.balance).toBe(after)
  })
})
