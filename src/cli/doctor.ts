import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { formatEther } from 'viem'
import { VERIFIABLE } from '../attestation/levels.ts'
import { getLedger } from '../chain/actions/get-ledger.ts'
import { createZgClients } from '../chain/clients.ts'
import type { ZgNetwork } from '../chain/networks.ts'
import { ApiKeyStore } from '../gateway/http/api-keys.ts'
import { ProviderCatalog } from '../providers/catalog.ts'
import { modelsProbe } from '../providers/probes.ts'
import { createProviderAgent } from '../providers/provider-agent.ts'
import type { Command, Values } from './command.ts'
import { dataDirOf, networkOptions, resolveNetwork, resolveWallet } from './network-options.ts'
import { printJson, table } from './output.ts'

/** One check: ok, a warning (works, but worth fixing), or a failure (what is asked of the gateway will not work). */
type Check = { name: string; status: 'ok' | 'warn' | 'fail'; detail: string; fix?: string }

const ok = (name: string, detail: string): Check => ({ name, status: 'ok', detail })
const warn = (name: string, detail: string, fix: string): Check => ({ name, status: 'warn', detail, fix })
const fail = (name: string, detail: string, fix: string): Check => ({ name, status: 'fail', detail, fix })
const firstLine = (err: unknown) => String((err as Error).message ?? err).split('\n')[0]!

/** The chain: reachable, the chain id expected, the contracts deployed where the configuration says. */
async function chainChecks(network: ZgNetwork): Promise<{ checks: Check[]; reachable: boolean }> {
  const { publicClient } = createZgClients({ network })
  let chainId: number
  try {
    chainId = await publicClient.getChainId()
  } catch (err) {
    const detail = `${network.rpcUrl} did not answer: ${firstLine(err)}`
    return {
      checks: [fail('RPC', detail, 'check --network / the RPC URL, or start the devnet: npm start')],
      reachable: false,
    }
  }
  const checks = [
    chainId === network.chain.id
      ? ok('RPC', `${network.rpcUrl}, chain ${chainId}`)
      : fail('RPC', `chain ${chainId}, expected ${network.chain.id}`, 'point --network at the chain you mean'),
  ]
  for (const [name, address] of Object.entries(network.contracts)) {
    const code = await publicClient.getCode({ address }).catch(() => undefined)
    checks.push(
      code && code !== '0x'
        ? ok(`contract ${name}`, address)
        : fail(
            `contract ${name}`,
            `no code at ${address}`,
            `check --${name}-ca, or that the devnet is the one in devnet.json`,
          ),
    )
  }
  return { checks, reachable: true }
}

/** The wallet: configured, with gas, with a ledger that can fund sub-accounts. */
async function walletChecks(values: Values, network: ZgNetwork): Promise<Check[]> {
  const wallet = await resolveWallet(values, network).catch((err) => err as Error)
  if (wallet instanceof Error) return [fail('wallet', wallet.message, 'fix ZG_PRIVATE_KEY or --key-file')]
  if (!wallet) return [fail('wallet', 'no key configured', 'set ZG_PRIVATE_KEY or pass --key-file')]
  const clients = createZgClients({ network, account: wallet })
  const checks: Check[] = []
  const gas = await clients.publicClient.getBalance({ address: wallet.address })
  checks.push(
    gas > 0n
      ? ok('wallet', `${wallet.address}, ${formatEther(gas)} 0G for gas`)
      : fail('wallet', `${wallet.address} has no 0G for gas`, 'send it some 0G (testnet: the 0G faucet)'),
  )
  const ledger = await getLedger(clients, { user: wallet.address })
  if (!ledger) {
    checks.push(fail('ledger', 'none', 'create one: zg-gateway account create --amount 3'))
  } else {
    const available = ledger.availableBalance
    // A sub-account opens with 2 0G (serve --initial-deposit).
    checks.push(
      available >= 2n * 10n ** 18n
        ? ok('ledger', `${formatEther(available)} 0G available of ${formatEther(ledger.totalBalance)}`)
        : warn(
            'ledger',
            `${formatEther(available)} 0G available: too little to open another provider sub-account`,
            'zg-gateway account deposit --amount 5',
          ),
    )
  }
  return checks
}

/** The providers: discovered, reachable now, and how many sign their answers. */
async function providerChecks(values: Values, network: ZgNetwork): Promise<Check[]> {
  const allowPrivate = Boolean(values['allow-private-urls']) || network.name === 'devnet'
  const catalog = new ProviderCatalog({
    clients: createZgClients({ network }),
    allowPrivateUrls: allowPrivate,
    log: () => {},
  })
  try {
    await catalog.refresh()
  } catch (err) {
    return [fail('providers', `the services could not be read: ${firstLine(err)}`, 'check the RPC and the contracts')]
  }
  const entries = catalog.entries()
  const checks: Check[] = []
  const excluded = catalog.excluded().length
  if (!entries.length) {
    checks.push(
      fail('providers', `none usable${excluded ? ` (${excluded} left out)` : ''}`, 'zg-gateway providers list'),
    )
    return checks
  }
  const dispatcher = createProviderAgent({ allowPrivate, connectTimeoutMs: 5_000 })
  try {
    const probe = modelsProbe({ dispatcher, timeoutMs: 5_000 })
    const reachable = await Promise.all(entries.map((e) => probe(e)))
    const down = entries.filter((_, i) => !reachable[i]).map((e) => e.provider)
    const signed = entries.filter((e) => VERIFIABLE.has(e.verifiability) && e.teeSignerAcknowledged).length
    checks.push(
      down.length === entries.length
        ? fail(
            'providers',
            `none of ${entries.length} answered`,
            'check the network from here; zg-gateway providers list',
          )
        : down.length
          ? warn(
              'providers',
              `${entries.length - down.length} of ${entries.length} answered; down: ${down.join(', ')}`,
              'the gateway routes around them',
            )
          : ok(
              'providers',
              `${entries.length} answered${excluded ? ` (${excluded} left out: zg-gateway providers list)` : ''}`,
            ),
    )
    checks.push(
      signed
        ? ok('verifiable', `${signed} of ${entries.length} sign their answers with a signer acknowledged on-chain (L1)`)
        : warn('verifiable', 'no provider signs its answers (L1)', 'keys requiring L1 will find no provider'),
    )
  } finally {
    await dispatcher.close()
  }
  return checks
}

/** API keys: configured, or in the gateway's key store. */
function keyChecks(values: Values): Check[] {
  const configured = (process.env.ZG_API_KEYS ?? '').split(',').filter(Boolean).length
  const file = join(dataDirOf(values), 'gateway', 'gateway.sqlite')
  let stored = 0
  if (existsSync(file)) {
    const store = new ApiKeyStore(file)
    stored = store.list().filter((k) => k.revokedAt === null).length
    store.close()
  }
  if (configured + stored === 0)
    return [fail('API keys', 'none: nobody could call the gateway', 'zg-gateway keys create --name my-app')]
  return [ok('API keys', `${configured} configured (ZG_API_KEYS), ${stored} in the key store`)]
}

export const doctorCommand: Command = {
  summary: 'Check a configuration: RPC, contracts, wallet and ledger, providers reachable and verifiable, API keys',
  options: {
    ...networkOptions,
    'allow-private-urls': { type: 'boolean', description: 'allow providers on private addresses (local networks)' },
  },
  async run(values) {
    const network = await resolveNetwork(values)
    const chain = await chainChecks(network)
    const checks = [...chain.checks]
    if (chain.reachable)
      checks.push(...(await walletChecks(values, network)), ...(await providerChecks(values, network)))
    checks.push(...keyChecks(values))
    const failed = checks.some((c) => c.status === 'fail')
    if (values.json) printJson({ network: network.name, ok: !failed, checks })
    else {
      const mark = { ok: '✓', warn: '!', fail: '✗' }
      console.log(`network ${network.name}\n`)
      console.log(
        table([
          ['', 'check', 'found', 'what to do'],
          ...checks.map((c) => [mark[c.status], c.name, c.detail, c.fix ?? '']),
        ]),
      )
      console.log(failed ? '\nSome checks failed: see "what to do".' : '\nAll set.')
    }
    return failed ? 1 : 0
  },
}
