import { type Address, type Hex, hexToBytes } from 'viem'
import type { TeeSigner } from '../../attestation/tee-signer.ts'
import type { ZgWalletClients } from '../../chain/clients.ts'
import { ZgContractError } from '../../chain/errors.ts'
import {
  addDeliverable,
  type Deliverable,
  fineTuningAddress,
  getDeliverable,
  getFineTuningAccount,
  settleFineTuningFees,
  signVerifierMessage,
} from '../../chain/fine-tuning/index.ts'
import { format0G } from '../../chain/units.ts'
import { eciesEncrypt } from '../../fine-tuning/ecies.ts'
import type { FineTuningTask, Settlement } from './task.ts'
import type { FineTuningTaskStore } from './task-store.ts'

export type DeliveryOptions = {
  store: FineTuningTaskStore
  clients: ZgWalletClients
  signer: TeeSigner
  /** How long a user has to acknowledge a deliverable before it is settled without the key (default 48 h). */
  ackTimeoutMs?: number
  /** How often the chain is read for what users did (default 5 s). */
  pollIntervalMs?: number
  log: (line: string) => void
}

/** 0G's penalty on a deliverable settled without the user's acknowledgement (FineTuningServing, deployed with 30). */
const PENALTY_NOTE = 'the contract charges its penalty percentage (30%) of the fee'

/**
 * Takes encrypted models to the chain and follows them there, one round at a time:
 * - Delivering: addDeliverable(user, id, modelRootHash). The contract refuses it while the user's previous
 *   deliverable is neither acknowledged nor settled, so the task waits (its log says for what) and the user's later
 *   tasks wait behind it; nothing paid for is dropped. A deliverable already on chain (a restart after the
 *   transaction) is recognised by its id and hash.
 * - Delivered: once the user acknowledges, settleFees with the AES key ECIES-encrypted to the user's public key
 *   (UserAcknowledged → Finished); past the acknowledgement window, settleFees with the empty secret (the penalty).
 * Every step reads the chain first, so a restart or a second attempt never settles twice.
 */
export class DeliveryFollower {
  readonly #o: Required<DeliveryOptions>
  readonly #provider: Address
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #again = false
  #closed = false
  /** The last line logged per task about why it waits: a wait is told once, not every round. */
  readonly #told = new Map<string, string>()

  constructor(options: DeliveryOptions) {
    this.#o = {
      ...options,
      ackTimeoutMs: options.ackTimeoutMs ?? 48 * 3_600_000,
      pollIntervalMs: options.pollIntervalMs ?? 5_000,
    }
    this.#provider = options.clients.walletClient.account.address
  }

  start(): void {
    this.#timer = setInterval(() => this.wake(), this.#o.pollIntervalMs)
    this.#timer.unref()
    this.wake()
  }

  /** Runs a round now (or right after the one under way). */
  wake(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (this.#round) {
      this.#again = true
      return this.#round
    }
    this.#round = this.#run().finally(() => {
      this.#round = undefined
      if (this.#again && !this.#closed) {
        this.#again = false
        this.wake()
      }
    })
    return this.#round
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer) clearInterval(this.#timer)
    await this.#round?.catch(() => undefined)
  }

  async #run(): Promise<void> {
    const { store } = this.#o
    const waiting = new Set<string>()
    for (const task of store.tasksIn(['Delivering'])) {
      if (this.#closed) return
      if (!task.modelRootHash || waiting.has(task.user)) continue
      if (!(await this.#step(task, () => this.#deliver(task)))) waiting.add(task.user)
    }
    for (const task of store.tasksIn(['Delivered', 'UserAcknowledged'])) {
      if (this.#closed) return
      await this.#step(task, () => this.#follow(task))
    }
  }

  /** Runs one task's step; a failure is logged (once per distinct message) and retried next round. */
  async #step(task: FineTuningTask, step: () => Promise<boolean>): Promise<boolean> {
    try {
      return await step()
    } catch (err) {
      this.#tell(task, `${this.#what(task)} failed, retrying: ${errorText(err)}`)
      return false
    }
  }

  #what(task: FineTuningTask) {
    return task.progress === 'Delivering' ? 'delivery' : 'settlement'
  }

  #tell(task: FineTuningTask, line: string): void {
    if (this.#told.get(task.id) === line) return
    this.#told.set(task.id, line)
    this.#o.store.appendLog(task.id, line)
    this.#o.log(`fine-tuning: task ${task.id}: ${line}`)
  }

  async #deliver(task: FineTuningTask): Promise<boolean> {
    const { clients, store } = this.#o
    const root = task.modelRootHash as Hex
    let onChain = await getDeliverable(clients, task.user, this.#provider, task.id)
    if (!onChain) {
      try {
        await addDeliverable(clients, { user: task.user, id: task.id, modelRootHash: root })
      } catch (err) {
        if (err instanceof ZgContractError && err.errorName === 'PreviousDeliverableNotAcknowledged') {
          const previous = String(err.args[0] ?? '?')
          const blocker = await getDeliverable(clients, task.user, this.#provider, previous)
          this.#tell(
            task,
            blocker?.settled
              ? `waiting: the user's previous model (task ${previous}) was settled without acknowledgement, and the contract takes no new model for this sub-account until the user empties the ledger (which deletes it) and funds it again`
              : `waiting for the user to acknowledge the previous model (task ${previous}) before this one can be delivered`,
          )
          return false
        }
        throw err
      }
      onChain = await getDeliverable(clients, task.user, this.#provider, task.id)
      if (!onChain) throw new Error('addDeliverable succeeded but the deliverable cannot be read back')
    }
    if (onChain.modelRootHash.toLowerCase() !== root.toLowerCase()) {
      store.update(task.id, { progress: 'Failed', error: 'the deliverable on chain has another model root hash' })
      this.#tell(task, `failed: the deliverable on chain has root hash ${onChain.modelRootHash}, not ${root}`)
      return true
    }
    const account = await getFineTuningAccount(clients, task.user, this.#provider)
    const index = account?.deliverables.findIndex((d) => d.id === task.id) ?? -1
    store.update(
      task.id,
      {
        progress: 'Delivered',
        deliveredAt: Date.now(),
        deliverIndex: index >= 0 ? index : undefined,
      },
      ['Delivering'],
    )
    store.appendLog(
      task.id,
      `delivered: on chain with root hash ${root}; download it (POST …/task/${task.id}/lora) and acknowledge it within ${hours(this.#o.ackTimeoutMs)}`,
    )
    return true
  }

  async #follow(task: FineTuningTask): Promise<boolean> {
    const { clients, store } = this.#o
    const onChain = await getDeliverable(clients, task.user, this.#provider, task.id)
    if (!onChain) {
      this.#tell(task, 'the deliverable is no longer on chain (evicted from the last 20): it cannot be settled')
      store.update(task.id, { progress: 'Failed', error: 'the deliverable was evicted before settlement' })
      return true
    }
    if (onChain.settled) return this.#finished(task, onChain.acknowledged ? 'acknowledged' : 'penalty')
    if (onChain.acknowledged) {
      if (task.progress !== 'UserAcknowledged') {
        store.update(task.id, { progress: 'UserAcknowledged' }, ['Delivered'])
        store.appendLog(task.id, 'acknowledged by the user: settling the fee with the key')
      }
      return this.#settle(task, onChain, true)
    }
    const deliveredAt = task.deliveredAt ?? Date.now()
    if (Date.now() - deliveredAt < this.#o.ackTimeoutMs) return true
    this.#tell(
      task,
      `not acknowledged within ${hours(this.#o.ackTimeoutMs)}: settling without the key; ${PENALTY_NOTE}`,
    )
    return this.#settle(task, onChain, false)
  }

  async #settle(task: FineTuningTask, onChain: Deliverable, acknowledged: boolean): Promise<boolean> {
    const { clients, signer } = this.#o
    if (!task.artifactKey) throw new Error('the artifact key is missing from the store')
    const account = await getFineTuningAccount(clients, task.user, this.#provider)
    if (!account) throw new Error('the user has no fine-tuning sub-account any more')
    // Any nonce above the account's; the time keeps two settlements from ever choosing the same one.
    const now = BigInt(Date.now())
    const nonce = account.nonce >= now ? account.nonce + 1n : now
    const encryptedSecret: Hex = acknowledged ? eciesEncrypt(task.userPublicKey, hexToBytes(task.artifactKey)) : '0x'
    // The contract needs the balance to cover the fee. A user who withdrew since the task was created still gets the
    // key of a model they acknowledged: the settlement takes what is left rather than never happening.
    let taskFee = task.fee
    if (account.balance < taskFee) {
      taskFee = account.balance
      this.#tell(task, `the sub-account holds ${format0G(account.balance)} 0G, less than the fee: settling for that`)
    }
    const message = {
      id: task.id,
      encryptedSecret,
      modelRootHash: onChain.modelRootHash,
      nonce,
      taskFee,
      user: task.user,
    }
    const signature = await signVerifierMessage(signer, {
      ...message,
      chainId: clients.network.chain.id,
      contract: fineTuningAddress(clients),
    })
    const { hash } = await settleFineTuningFees(clients, { ...message, signature })
    return this.#finished(task, acknowledged ? 'acknowledged' : 'penalty', { txHash: hash, taskFee })
  }

  /** Records the settlement: `settled` is what this node's transaction charged (unknown when found on chain). */
  #finished(task: FineTuningTask, settlement: Settlement, settled?: { txHash: Hex; taskFee: bigint }): boolean {
    const { store } = this.#o
    const done = store.update(task.id, { progress: 'Finished', settlement, settleTxHash: settled?.txHash }, [
      'Delivered',
      'UserAcknowledged',
    ])
    if (!done) return true
    const tx = settled ? ` (tx ${settled.txHash})` : ''
    store.appendLog(
      task.id,
      settlement === 'acknowledged'
        ? `finished: settled${settled ? ` ${format0G(settled.taskFee)} 0G` : ''} with the key encrypted to the user${tx}`
        : `finished without acknowledgement: settled with the empty secret; ${PENALTY_NOTE}${settled ? ` (${format0G((settled.taskFee * 30n) / 100n)} of ${format0G(settled.taskFee)} 0G)` : ''}${tx}`,
    )
    this.#told.delete(task.id)
    return true
  }
}

function hours(ms: number): string {
  const h = ms / 3_600_000
  return h >= 1 ? `${Number(h.toFixed(2))} h` : `${Number((ms / 1000).toFixed(1))} s`
}

function errorText(err: unknown): string {
  const e = err as Error & { shortMessage?: string }
  return e.shortMessage ?? e.message ?? String(err)
}
