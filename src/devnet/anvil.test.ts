import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPublicClient, http, parseEther } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type Anvil,
  anvilAccount,
  anvilPrivateKey,
  DEV_MNEMONIC,
  DEV_MNEMONIC_KEYS,
  increaseTime,
  startAnvil,
} from './anvil.ts'

describe('dev accounts', () => {
  it('DEV_MNEMONIC_KEYS are the first 10 keys derived from the anvil mnemonic', () => {
    expect(DEV_MNEMONIC_KEYS).toHaveLength(10)
    DEV_MNEMONIC_KEYS.forEach((key, i) => {
      const hd = mnemonicToAccount(DEV_MNEMONIC, { addressIndex: i })
      expect(key).toBe(`0x${Buffer.from(hd.getHdKey().privateKey!).toString('hex')}`)
      expect(anvilPrivateKey(i)).toBe(key)
      expect(anvilAccount(i).address).toBe(hd.address)
    })
  })

  it('derives keys beyond the first 10', () => {
    expect(anvilAccount(10).address).toBe(mnemonicToAccount(DEV_MNEMONIC, { addressIndex: 10 }).address)
    expect(() => anvilPrivateKey(-1)).toThrow(RangeError)
  })
})

describe('startAnvil', () => {
  let anvil: Anvil
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'zg-anvil-'))
    anvil = await startAnvil({ chainId: 4242, accounts: 2 })
  })
  afterAll(async () => {
    await anvil?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('listens on a random 127.0.0.1 port with the requested chain id and funded accounts', async () => {
    expect(anvil.port).toBeGreaterThan(0)
    expect(anvil.rpcUrl).toBe(`http://127.0.0.1:${anvil.port}`)
    const client = createPublicClient({ transport: http(anvil.rpcUrl) })
    expect(await client.getChainId()).toBe(4242)
    expect(await client.getBalance({ address: anvilAccount(1).address })).toBe(parseEther('1000000'))
    expect(await client.getBalance({ address: anvilAccount(2).address })).toBe(0n)
  })

  it('increaseTime moves the chain clock and mines', async () => {
    const client = createPublicClient({ transport: http(anvil.rpcUrl) })
    const before = await client.getBlock()
    await increaseTime(anvil.rpcUrl, 3600)
    const after = await client.getBlock()
    expect(after.number).toBe(before.number + 1n)
    expect(after.timestamp - before.timestamp).toBeGreaterThanOrEqual(3600n)
  })

  it('names the port when it is taken', async () => {
    await expect(startAnvil({ port: anvil.port })).rejects.toThrow(
      `anvil could not listen on 127.0.0.1:${anvil.port}: the port is already in use`,
    )
  })

  it('reports why anvil exited early', async () => {
    const bad = join(dir, 'bad-state.json')
    await writeFile(bad, '{"block":')
    await expect(startAnvil({ stateFile: bad })).rejects.toThrow(
      /exited \(code 2\) before it was listening:[\s\S]*bad-state\.json/,
    )
  })

  it('stop() is idempotent and the port is released', async () => {
    const other = await startAnvil()
    await Promise.all([other.stop(), other.stop()])
    await other.stop()
    const again = await startAnvil({ port: other.port })
    expect(again.port).toBe(other.port)
    await again.stop()
  })
})
