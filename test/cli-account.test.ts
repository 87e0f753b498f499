import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createZgClients } from '../src/chain/clients.ts'
import { customNetwork } from '../src/chain/networks.ts'
import { type Anvil, anvilAccount, anvilPrivateKey, startAnvil } from '../src/devnet/anvil.ts'
import { deployZgContracts } from '../src/devnet/deploy.ts'

const run = promisify(execFile)
const KEY = anvilPrivateKey(5)
const ME = anvilAccount(5).address

let anvil: Anvil
let chainArgs: string[]

/** Runs the real CLI in its own process; never throws, returns the exit code and both streams. */
async function cli(args: string[], env: Record<string, string> = { ZG_PRIVATE_KEY: KEY }) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/zg-gateway.js', ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

beforeAll(async () => {
  anvil = await startAnvil({ port: 0 })
  const network = customNetwork({
    chainId: anvil.chainId,
    rpcUrl: anvil.rpcUrl,
    contracts: { ledger: '0x', inference: '0x' },
  })
  const owner = createZgClients({ network, account: anvilAccount(0) })
  const contracts = await deployZgContracts({
    publicClient: owner.publicClient,
    walletClient: owner.walletClient,
    lockTime: 3600n,
  })
  chainArgs = ['--network', anvil.rpcUrl, '--ledger-ca', contracts.ledger, '--inference-ca', contracts.inference]
})

afterAll(async () => {
  await anvil?.stop()
})

describe('zg-gateway account (CLI)', () => {
  it('refuses a ledger below the minimum with the decoded reason, and never prints the key', async () => {
    const r = await cli(['account', 'create', '--amount', '1', ...chainArgs])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/MinimumDepositRequired.*below the minimum of 3(\.0)? 0G/)
    expect(r.stdout + r.stderr).not.toContain(KEY.slice(2))
  })

  it('creates a ledger and reports it as JSON, amounts in neuron', async () => {
    const r = await cli(['account', 'create', '--amount', '3', '--json', ...chainArgs])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ action: 'create', user: ME, amount: parseEther('3').toString() })
    expect(out.txHash).toMatch(/^0x[0-9a-f]{64}$/)
    expect(r.stdout).not.toContain(KEY.slice(2))
    // --json keeps stderr free of progress lines.
    expect(r.stderr).not.toMatch(/sending the transaction/)
  })

  it('shows the ledger as text and as JSON', async () => {
    const text = await cli(['account', 'show', ...chainArgs])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`Ledger of ${ME}`)
    expect(text.stdout).toMatch(/3(\.0)? 0G/)
    const json = await cli(['account', 'show', '--json', ...chainArgs])
    expect(JSON.parse(json.stdout).ledger).toMatchObject({ totalBalance: parseEther('3').toString(), locked: '0' })
  })

  it('refuses a refund beyond the available balance with the figures, before any transaction', async () => {
    const before = await cli(['account', 'show', '--json', ...chainArgs])
    const r = await cli(['account', 'refund', '--amount', '5000', ...chainArgs])
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toMatch(
      /^error: The ledger has 3(\.0)? 0G available, less than the 5000(\.0)? 0G asked: refund at most that\.$/,
    )
    expect(r.stderr).not.toMatch(/sub-account to pay this charge/)
    const after = await cli(['account', 'show', '--json', ...chainArgs])
    expect(JSON.parse(after.stdout).ledger).toEqual(JSON.parse(before.stdout).ledger)
  })

  it('shows another address without a wallet', async () => {
    const r = await cli(['account', 'show', '--address', anvilAccount(6).address, ...chainArgs], {})
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('has no ledger')
  })

  it('rejects bad input as a usage error (exit 2) before touching the chain', async () => {
    const bad = await cli(['account', 'deposit', '--amount', 'lots', ...chainArgs])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/invalid 0G amount "lots"/)
    const missing = await cli(['account', 'transfer', '--amount', '1', ...chainArgs])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/--provider is required/)
    const unknown = await cli(['account', 'frobnicate'])
    expect(unknown.code).toBe(2)
  })

  it('reports a malformed key by its source, not its value', async () => {
    const r = await cli(['account', 'show', ...chainArgs], { ZG_PRIVATE_KEY: 'not-a-key-1234' })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('ZG_PRIVATE_KEY')
    expect(r.stderr).not.toContain('not-a-key-1234')
  })

  it('gives errors as JSON with --json', async () => {
    const r = await cli(['account', 'refund', '--amount', '1', '--json', ...chainArgs])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stderr).error).toMatchObject({ kind: 'contract', errorName: 'MinimumDepositRequired' })
  })

  it('has --help for every account command', async () => {
    for (const c of ['show', 'create', 'deposit', 'transfer', 'retrieve', 'refund', 'delete']) {
      const r = await cli(['account', c, '--help'])
      expect(r.code).toBe(0)
      expect(r.stdout).toContain(`zg-gateway account ${c}`)
      expect(r.stdout).toContain('--json')
    }
  })

  it('says what a transaction is waiting for, on stderr', async () => {
    const r = await cli(['account', 'deposit', '--amount', '1', ...chainArgs])
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(
      /depositFund: sending the transaction…\ndepositFund: tx 0x[0-9a-f]{64} sent, waiting for it to be mined…\ndepositFund: mined in block \d+/,
    )
  })
})
