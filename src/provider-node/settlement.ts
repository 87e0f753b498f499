import {
  type Address,
  concat,
  encodeFunctionData,
  getAddress,
  type Hex,
  keccak256,
  parseEventLogs,
  type TransactionReceipt,
  toBytes,
} from 'viem'
import type { TeeSigner } from '../attestation/tee-signer.ts'
import { inferenceServingAbi, type SettlementStatus, settlementStatus } from '../chain/abi/inference-serving.ts'
import { getAccount } from '../chain/actions/get-account.ts'
import { requireWallet, type ZgClients } from '../chain/clients.ts'
import { toZgError } from '../chain/errors.ts'
import { TEE_SETTLEMENT_TYPES, teeSettlementDomain } from '../chain/tee-settlement.ts'
import type { UsageRecord, UsageStore } from './usage-store.ts'

/** The contract settles at most 50 users per call (InferenceServing MAX settlements). */
export const SETTLEMENT_BATCH = 50

export type SettlementItem = {
  user: Address
  provider: Address
  totalFee: bigint
  requestsHash: Hex
  nonce: bigint
  signature: Hex
}

export type SettlementOutcome = {
  user: Address
  status: SettlementStatus | 'SKIPPED'
  /** Neuron moved from the user's sub-account to the provider. */
  settled: bigint
  records: number
  txHash?: Hex
  detail?: string
}

/**
 * requestsHash over a user's records, oldest first: keccak256 of each record's
 * requestHash ‖ user ‖ fee ‖ inputFee ‖ outputFee as UTF-8 (0G broker ctrl/settlement_tee.go hashUserRequests).
 */
export function requestsHashOf(records: readonly UsageRecord[]): Hex {
  const parts = records.map((r) => toBytes(`${r.resKey}${r.user.toLowerCase()}${r.fee}${r.inputFee}${r.outputFee}`))
  return keccak256(parts.length ? concat(parts) : new Uint8Array())
}

/** EIP-712 TEESettlement, signed by the TEE signer (domain "0G Inference Serving" v1, the inference proxy). */
export async function signSettlement(
  signer: TeeSigner,
  params: { chainId: number; inference: Address; item: Omit<SettlementItem, 'signature'> },
): Promise<Hex> {
  return signer.signTypedData({
    domain: teeSettlementDomain(params.chainId, params.inference),
    types: TEE_SETTLEMENT_TYPES,
    primaryType: 'TEESettlement',
    message: {
      requestsHash: params.item.requestsHash,
      nonce: params.item.nonce,
      provider: params.item.provider,
      user: params.item.user,
      totalFee: params.item.totalFee,
    },
  })
}

type Deps = { clients: ZgClients; store: UsageStore; signer: TeeSigner; log?: (line: string) => void }

const sum = (records: readonly UsageRecord[]) => records.reduce((s, r) => s + r.fee, 0n)

/** Settlement results the contract reported for a mined settleFeesWithTEE call, by lower-case user. */
function resultsOf(receipt: TransactionReceipt): Map<string, { status: SettlementStatus; unsettled: bigint }> {
  const logs = parseEventLogs({ abi: inferenceServingAbi, eventName: 'TEESettlementResult', logs: receipt.logs })
  return new Map(
    logs.map((l) => [
      l.args.user.toLowerCase(),
      { status: settlementStatus[l.args.status] ?? 'INVALID_SIGNATURE', unsettled: l.args.unsettledAmount },
    ]),
  )
}

/** Applies a mined transaction's outcome to the settlements it carried. */
async function applyReceipt(
  store: UsageStore,
  receipt: TransactionReceipt,
  ids: { id: number; user: Address; totalFee: bigint }[],
) {
  const outcomes: SettlementOutcome[] = []
  const results = receipt.status === 'success' ? resultsOf(receipt) : undefined
  for (const { id, user, totalFee } of ids) {
    const records = await store.settlementRecords(id)
    if (!results) {
      await store.abandonSettlement(id, `transaction ${receipt.transactionHash} reverted`)
      outcomes.push({
        user,
        status: 'INVALID_SIGNATURE',
        settled: 0n,
        records: 0,
        txHash: receipt.transactionHash,
        detail: 'reverted',
      })
      continue
    }
    const result = results.get(user.toLowerCase()) ?? { status: 'SUCCESS' as const, unsettled: 0n }
    if (result.status === 'SUCCESS') {
      await store.completeSettlement(id, receipt.transactionHash)
      outcomes.push({
        user,
        status: 'SUCCESS',
        settled: totalFee,
        records: records.length,
        txHash: receipt.transactionHash,
      })
    } else if (result.status === 'PARTIAL') {
      // Only what was paid is settled: the oldest records that fit in it; the rest wait for more funds.
      const paid = totalFee - result.unsettled
      const kept: string[] = []
      let acc = 0n
      for (const r of records) {
        if (acc + r.fee > paid) break
        acc += r.fee
        kept.push(r.resKey)
      }
      await store.completeSettlement(id, `partial: ${result.unsettled} unpaid`, kept)
      outcomes.push({ user, status: 'PARTIAL', settled: paid, records: kept.length, txHash: receipt.transactionHash })
    } else {
      await store.abandonSettlement(id, result.status)
      outcomes.push({ user, status: result.status, settled: 0n, records: 0, txHash: receipt.transactionHash })
    }
  }
  return outcomes
}

/**
 * Finishes settlements a previous run started but did not see through (a crash, a timeout): a mined transaction
 * is applied; one that can no longer be mined (the wallet's nonce moved past it) frees its records; one still
 * pending stays open, and its records stay claimed, so nothing is ever settled twice.
 */
export async function recoverSettlements(deps: Deps): Promise<SettlementOutcome[]> {
  const { clients, store } = deps
  const wallet = requireWallet(clients)
  const open = await store.openSettlements()
  if (!open.length) return []
  const outcomes: SettlementOutcome[] = []
  const walletNonce = await clients.publicClient.getTransactionCount({
    address: wallet.account.address,
    blockTag: 'latest',
  })
  const byTx = new Map<string, typeof open>()
  for (const s of open) {
    if (!s.txHash) {
      // Claimed but never signed into a transaction: nothing can have reached the chain.
      await store.abandonSettlement(s.id, 'interrupted before sending')
      continue
    }
    byTx.set(s.txHash, [...(byTx.get(s.txHash) ?? []), s])
  }
  for (const [hash, settlements] of byTx) {
    const receipt = await clients.publicClient.getTransactionReceipt({ hash: hash as Hex }).catch(() => undefined)
    if (receipt) {
      outcomes.push(...(await applyReceipt(store, receipt, settlements)))
    } else if (settlements[0]!.txNonce !== null && walletNonce > settlements[0]!.txNonce) {
      for (const s of settlements) await store.abandonSettlement(s.id, `transaction ${hash} was never mined`)
    } else {
      deps.log?.(`settlement: transaction ${hash} is still pending; its records stay claimed`)
    }
  }
  return outcomes
}

/**
 * Runs the settlement job as the provider's only settler ({@link UsageStore.exclusively}): on a store shared by
 * several nodes, a run that finds another node settling is skipped (an empty result), so the provider wallet never
 * sends two settlements at once and its transaction nonces never collide.
 */
export async function settle(deps: Deps): Promise<SettlementOutcome[]> {
  const run = await deps.store.exclusively(() => settleNow(deps))
  if (run.ran) return run.value
  deps.log?.('settlement: another node of this provider is settling now; this run is skipped')
  return []
}

/**
 * Settles every user's unsettled records on-chain: per user, the records (oldest first) → requestsHash → an
 * EIP-712 TEESettlement signed by the TEE key; previewSettlementResults drops what would fail and trims partial
 * ones to what the account can pay; then settleFeesWithTEE in batches of ≤ 50. Each settlement is written to the
 * store before its transaction is broadcast, and the signed transaction's hash with it, so a crash at any point
 * is recovered by recoverSettlements without settling a record twice. Call it through {@link settle}, which holds the settlement lock.
 */
async function settleNow(deps: Deps): Promise<SettlementOutcome[]> {
  const { clients, store, signer } = deps
  const wallet = requireWallet(clients)
  const provider = wallet.account.address
  const inference = clients.network.contracts.inference
  const chainId = clients.network.chain.id
  const outcomes = await recoverSettlements(deps)

  const users = await store.usersWithUnsettled()
  for (let i = 0; i < users.length; i += SETTLEMENT_BATCH) {
    const planned: { item: SettlementItem; records: UsageRecord[] }[] = []
    for (const rawUser of users.slice(i, i + SETTLEMENT_BATCH)) {
      const user = getAddress(rawUser)
      const records = await store.unsettledRecords(user)
      const account = await getAccount(clients, { user, provider })
      if (!account) {
        outcomes.push({ user, status: 'SKIPPED', settled: 0n, records: 0, detail: 'no sub-account' })
        continue
      }
      // 0G broker nonce: unix seconds × 10^7, kept above both the chain's and our own last nonce.
      const nonce = [
        BigInt(Math.floor(Date.now() / 1000)) * 10_000_000n,
        account.nonce + 1n,
        (await store.lastNonce(user)) + 1n,
      ].reduce((a, b) => (a > b ? a : b))
      const make = async (rs: UsageRecord[]) => {
        const base = { user, provider, totalFee: sum(rs), requestsHash: requestsHashOf(rs), nonce }
        return {
          item: { ...base, signature: await signSettlement(signer, { chainId, inference, item: base }) },
          records: rs,
        }
      }
      planned.push(await make(records))
    }
    if (!planned.length) continue

    const [failedUsers, failureReasons, partialUsers, partialAmounts] = await clients.publicClient.readContract({
      address: inference,
      abi: inferenceServingAbi,
      functionName: 'previewSettlementResults',
      args: [planned.map((p) => p.item)],
      account: provider,
    })
    const failed = new Map(
      failedUsers.map((u, k) => [u.toLowerCase(), settlementStatus[failureReasons[k]!] ?? 'INVALID_SIGNATURE']),
    )
    const partial = new Map(partialUsers.map((u, k) => [u.toLowerCase(), partialAmounts[k]!]))
    const sendable: { item: SettlementItem; records: UsageRecord[] }[] = []
    for (const p of planned) {
      const key = p.item.user.toLowerCase()
      const failure = failed.get(key)
      if (failure) {
        outcomes.push({ user: p.item.user, status: failure, settled: 0n, records: 0, detail: 'preview' })
        continue
      }
      const unpaid = partial.get(key)
      if (unpaid !== undefined && unpaid > 0n) {
        // Settle only the oldest records the account can pay in full, re-signed for exactly that set.
        const budget = p.item.totalFee - unpaid
        const fit: UsageRecord[] = []
        let acc = 0n
        for (const r of p.records) {
          if (acc + r.fee > budget) break
          acc += r.fee
          fit.push(r)
        }
        if (!fit.length || acc === 0n) {
          outcomes.push({
            user: p.item.user,
            status: 'PARTIAL',
            settled: 0n,
            records: 0,
            detail: 'balance too low for any record',
          })
          continue
        }
        const base = { ...p.item, totalFee: acc, requestsHash: requestsHashOf(fit) }
        sendable.push({
          item: { ...base, signature: await signSettlement(signer, { chainId, inference, item: base }) },
          records: fit,
        })
        continue
      }
      sendable.push(p)
    }
    if (!sendable.length) continue

    const claimed: { id: number; user: Address; totalFee: bigint }[] = []
    for (const s of sendable) {
      const id = await store.beginSettlement({
        user: s.item.user,
        nonce: s.item.nonce,
        totalFee: s.item.totalFee,
        requestsHash: s.item.requestsHash,
        resKeys: s.records.map((r) => r.resKey),
      })
      claimed.push({ id, user: s.item.user, totalFee: s.item.totalFee })
    }
    try {
      const call = {
        address: inference,
        abi: inferenceServingAbi,
        functionName: 'settleFeesWithTEE',
        args: [sendable.map((s) => s.item)],
      } as const
      await clients.publicClient.simulateContract({ ...call, account: wallet.account })
      const prepared = await wallet.prepareTransactionRequest({ to: inference, data: encodeFunctionData(call) })
      const serialized = await wallet.signTransaction(prepared)
      const hash = keccak256(serialized)
      await store.markSent(
        claimed.map((c) => c.id),
        hash,
        prepared.nonce,
      )
      await wallet.sendRawTransaction({ serializedTransaction: serialized })
      const receipt = await clients.publicClient.waitForTransactionReceipt({ hash })
      outcomes.push(...(await applyReceipt(store, receipt, claimed)))
    } catch (err) {
      // Not broadcast (or its fate is unknown): recoverSettlements decides from the chain, never by guessing.
      const e = toZgError(err)
      deps.log?.(`settlement batch failed: ${(e as Error).message}`)
      outcomes.push(...(await recoverSettlements(deps)))
      throw e
    }
  }
  return outcomes
}
