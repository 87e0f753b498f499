import { createZgClients, type ZgWalletClients } from '../../src/chain/clients.ts'
import { customNetwork, type ZgNetwork } from '../../src/chain/networks.ts'
import { type Anvil, anvilAccount, startAnvil } from '../../src/devnet/anvil.ts'
import { type DeployedContracts, deployZgContracts } from '../../src/devnet/deploy.ts'

export type TestChain = {
  anvil: Anvil
  network: ZgNetwork
  contracts: DeployedContracts
  /** Clients of anvil account `i` on the network (0 owns the contracts). */
  clientsOf(i: number): ZgWalletClients
}

/** anvil on a free port with the real 0G contracts deployed as production deploys them. */
export async function startTestChain(opts: { lockTime?: bigint } = {}): Promise<TestChain> {
  const anvil = await startAnvil({ port: 0 })
  try {
    const boot = customNetwork({
      chainId: anvil.chainId,
      rpcUrl: anvil.rpcUrl,
      contracts: { ledger: '0x', inference: '0x' },
    })
    const deployer = createZgClients({ network: boot, account: anvilAccount(0) })
    const contracts = await deployZgContracts({
      publicClient: deployer.publicClient,
      walletClient: deployer.walletClient,
      lockTime: opts.lockTime ?? 3600n,
    })
    const network = customNetwork({ chainId: anvil.chainId, rpcUrl: anvil.rpcUrl, contracts })
    return { anvil, network, contracts, clientsOf: (i) => createZgClients({ network, account: anvilAccount(i) }) }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}
