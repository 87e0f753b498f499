import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Address, type Hex, type LocalAccount, parseEther } from 'viem'
import { createInsecureDevSigner } from '../../src/attestation/dev-signer.ts'
import type { TeeSigner } from '../../src/attestation/tee-signer.ts'
import { addLedger } from '../../src/chain/actions/add-ledger.ts'
import { transferFund } from '../../src/chain/actions/transfer-fund.ts'
import type { ZgWalletClients } from '../../src/chain/clients.ts'
import {
  acknowledgeFineTuningSignerByOwner,
  addOrUpdateFineTuningService,
  FINE_TUNING_SERVICE_NAME,
} from '../../src/chain/fine-tuning/index.ts'
import type { ZgNetwork } from '../../src/chain/networks.ts'
import type { Anvil } from '../../src/devnet/anvil.ts'
import type { DeployedContracts } from '../../src/devnet/deploy.ts'
import {
  cancelDigest,
  datasetUploadDigest,
  loraDownloadDigest,
  signUserDigest,
  taskDigest,
} from '../../src/fine-tuning/signatures.ts'
import {
  type FineTuningNode,
  type FineTuningNodeOptions,
  startFineTuningNode,
} from '../../src/provider-node/fine-tuning/server.ts'
import { startTestChain } from './chain.ts'

/** A local chain with the real contracts, and what a fine-tuning provider and its users need on it. */
export type FineTuningMarket = {
  anvil: Anvil
  network: ZgNetwork
  contracts: DeployedContracts
  owner: ZgWalletClients
  clientsOf(i: number): ZgWalletClients
  dataDir: string
  /** Starts a node for `provider` (a fresh data dir unless one is given) with these options. */
  startNode(
    provider: ZgWalletClients,
    signer: TeeSigner,
    options: Partial<FineTuningNodeOptions> & Pick<FineTuningNodeOptions, 'trainer' | 'models'>,
  ): Promise<FineTuningNode & { dataDir: string }>
  /** Registers `provider`'s fine-tuning service at `url` (stake 100 0G) and has the owner acknowledge its signer. */
  register(
    provider: ZgWalletClients,
    params: { url: string; signer: Address; models: string[]; pricePerToken: bigint },
  ): Promise<void>
  /** A dev signer with its key in a fresh file. */
  signer(name: string): Promise<TeeSigner>
  /** A ledger for `user` (10 0G) and its fine-tuning sub-account with `provider`. */
  fund(user: ZgWalletClients, provider: Address, subAccount: bigint): Promise<void>
  stop(): Promise<void>
}

export async function startFineTuningMarket(): Promise<FineTuningMarket> {
  const dataDir = mkdtempSync(join(tmpdir(), 'zg-ft-'))
  const { anvil, network, contracts, clientsOf } = await startTestChain({ lockTime: 3600n })
  const owner = clientsOf(0)
  const nodes: FineTuningNode[] = []
  let dirs = 0
  return {
    anvil,
    network,
    contracts,
    owner,
    clientsOf,
    dataDir,
    async startNode(provider, signer, options) {
      const nodeDir = options.dataDir ?? join(dataDir, `node-${++dirs}`)
      const node = await startFineTuningNode({
        clients: provider,
        signer,
        dataDir: nodeDir,
        pollIntervalMs: 200,
        log: () => {},
        ...options,
      })
      nodes.push(node)
      return { ...node, dataDir: nodeDir }
    },
    async register(provider, params) {
      await addOrUpdateFineTuningService(provider, {
        url: params.url,
        quota: { cpuCount: 2n, nodeMemory: 4n, gpuCount: 0n, nodeStorage: 10n, gpuType: 'none' },
        pricePerToken: params.pricePerToken,
        occupied: false,
        models: params.models,
        teeSignerAddress: params.signer,
        stake: parseEther('100'),
      })
      await acknowledgeFineTuningSignerByOwner(owner, provider.walletClient.account.address)
    },
    signer: (name) => createInsecureDevSigner({ keyFile: join(dataDir, `${name}.key`) }),
    async fund(user, provider, subAccount) {
      await addLedger(user, { amount: parseEther('10') })
      await transferFund(user, { provider, amount: subAccount, serviceName: FINE_TUNING_SERVICE_NAME })
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.close().catch(() => undefined)))
      await anvil.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

/** What a user sends a fine-tuning node, signed as 0G's SDK signs it (SDK common/utils/encrypt.js, provider.js). */
export function fineTuningUser(url: string, clients: ZgWalletClients) {
  const account = clients.walletClient.account as LocalAccount
  const address = account.address
  const now = () => Math.floor(Date.now() / 1000)
  return {
    address,
    account,
    async upload(bytes: Uint8Array | string, opts: { timestamp?: number; signer?: LocalAccount } = {}) {
      const timestamp = opts.timestamp ?? now()
      const signature = await signUserDigest(opts.signer ?? account, datasetUploadDigest(address, timestamp))
      const form = new FormData()
      form.append('file', new Blob([typeof bytes === 'string' ? bytes : new Uint8Array(bytes)]), 'dataset.jsonl')
      form.append('signature', signature)
      form.append('timestamp', String(timestamp))
      return fetch(`${url}/v1/user/${address}/dataset`, { method: 'POST', body: form })
    },
    async createTask(params: {
      datasetHash: Hex
      preTrainedModelHash: Hex
      trainingParams?: string
      nonce?: bigint
      signer?: LocalAccount
      wait?: boolean
    }) {
      const nonce = params.nonce ?? BigInt(Date.now()) * 10000n + 40n
      const signature = await signUserDigest(params.signer ?? account, taskDigest(address, nonce, params.datasetHash))
      return fetch(`${url}/v1/user/${address}/task`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          userAddress: address,
          datasetHash: params.datasetHash,
          trainingParams: params.trainingParams ?? JSON.stringify({ num_train_epochs: 2 }),
          preTrainedModelHash: params.preTrainedModelHash,
          fee: '0',
          nonce: nonce.toString(),
          signature,
          wait: params.wait ?? true,
        }),
      })
    },
    async task(id: string) {
      const res = await fetch(`${url}/v1/user/${address}/task/${id}`)
      return (await res.json()) as Record<string, unknown> & { progress: string; fee: string }
    },
    async log(id: string) {
      return (await fetch(`${url}/v1/user/${address}/task/${id}/log`)).text()
    },
    async lora(id: string, opts: { signer?: LocalAccount } = {}) {
      const timestamp = now()
      const signature = await signUserDigest(opts.signer ?? account, loraDownloadDigest(id, timestamp))
      return fetch(`${url}/v1/user/${address}/task/${id}/lora`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ signature, timestamp }),
      })
    },
    async cancel(id: string, opts: { signer?: LocalAccount } = {}) {
      const signature = await signUserDigest(opts.signer ?? account, cancelDigest(id))
      return fetch(`${url}/v1/user/${address}/task/${id}/cancel`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ signature }),
      })
    },
    /** Polls the task until its progress is one of `states` (or the time is up). */
    async until(id: string, states: string[], timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const task = await this.task(id)
        if (states.includes(task.progress)) return task
        if (Date.now() > deadline)
          throw new Error(`task ${id} is ${task.progress}, not ${states.join('|')}; log:\n${await this.log(id)}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
  }
}
