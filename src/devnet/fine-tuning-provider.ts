import { join } from 'node:path'
import { type Address, parseEther } from 'viem'
import { createInsecureDevSigner } from '../attestation/dev-signer.ts'
import { createZgClients, type ZgWalletClients } from '../chain/clients.ts'
import {
  acknowledgeFineTuningSignerByOwner,
  addOrUpdateFineTuningService,
  getFineTuningService,
} from '../chain/fine-tuning/index.ts'
import type { ZgNetwork } from '../chain/networks.ts'
import { DEV_TRAINER_COMMAND } from '../fine-tuning/trainer.ts'
import { type FineTuningNode, startFineTuningNode } from '../provider-node/fine-tuning/server.ts'
import { anvilAccount } from './anvil.ts'
import { DEV_CHAT_MODEL } from './backends/index.ts'

/** The devnet's fine-tuning provider: anvil account 9 (the last one the inference providers leave free). */
export const DEV_FINE_TUNING_ACCOUNT = 9
/** 0.000001 0G a token: a dev dataset of a few thousand tokens over 3 epochs costs about 0.01 0G. */
export const DEV_FINE_TUNING_PRICE = 1_000_000_000_000n

export type DevFineTuningProvider = { address: Address; node: FineTuningNode }

/**
 * Starts the dev fine-tuning provider node (the dev trainer, the insecure dev signer) and registers it on
 * FineTuningServing for the dev chat model, acknowledged by the owner: what `zg-gateway provider fine-tuning serve`
 * and `… register` do for an operator.
 */
export async function startDevFineTuningProvider(params: {
  network: ZgNetwork
  owner: ZgWalletClients
  dataDir: string
  log: (line: string) => void
}): Promise<DevFineTuningProvider> {
  const clients = createZgClients({ network: params.network, account: anvilAccount(DEV_FINE_TUNING_ACCOUNT) })
  const address = clients.walletClient.account.address
  const signer = await createInsecureDevSigner({ keyFile: join(params.dataDir, 'tee-signer.key') })
  const node = await startFineTuningNode({
    clients,
    signer,
    dataDir: params.dataDir,
    models: [DEV_CHAT_MODEL],
    trainer: DEV_TRAINER_COMMAND,
    trainerLabel: 'zg-dev-trainer (a word model fit to the dataset; not a neural network)',
    pollIntervalMs: 300,
    log: params.log,
  })
  try {
    const service = {
      url: node.url,
      quota: { cpuCount: 2n, nodeMemory: 4n, gpuCount: 0n, nodeStorage: 10n, gpuType: 'none (dev trainer)' },
      pricePerToken: DEV_FINE_TUNING_PRICE,
      occupied: false,
      models: [DEV_CHAT_MODEL],
      teeSignerAddress: signer.address,
    }
    const current = await getFineTuningService(clients, address)
    if (!current) await addOrUpdateFineTuningService(clients, { ...service, stake: parseEther('100') })
    else if (current.url !== service.url || current.teeSignerAddress !== service.teeSignerAddress)
      await addOrUpdateFineTuningService(clients, service)
    if (!(await getFineTuningService(clients, address))?.teeSignerAcknowledged)
      await acknowledgeFineTuningSignerByOwner(params.owner, address)
  } catch (err) {
    await node.close()
    throw err
  }
  return { address, node }
}
