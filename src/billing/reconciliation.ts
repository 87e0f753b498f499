import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import type { Dispatcher } from 'undici'
import { type Address, decodeEventLog, encodeEventTopics, getAddress, type Hex, pad, toHex } from 'viem'
import { inferenceServingAbi, type SettlementStatus, settlementStatus } from '../chain/abi/inference-serving.ts'
import type { ZgClients } from '../chain/clients.ts'
import { fetchJsonGuarded } from '../http/guarded-json.ts'

/**
 * Reconciliation: what providers charged the gateway's wallet on-chain (settlements) plus what they say is still
 * unsettled, against the fees the gateway's usage ledger recorded for the calls they delivered. Every figure is an
 * exact bigint in neuron, so by default any excess at all is flagged.
 */

/** A BalanceUpdated or TEESettlementResult of the watched user, decoded, in chain order. */
export type ChargeLog =
  | {
      kind: 'balance'
      blockNumber: bigint
      logIndex: number
      txHash: Hex
      provider: Address
      /** The sub-account's balance after the change. */
      balance: bigint
      pendingRefund: bigint
    }
  | {
      kind: 'settlement'
      blockNumber: bigint
      logIndex: number
      txHash: Hex
      status: SettlementStatus
      unsettled: bigint
    }

/** An eth_getLogs entry as the RPC returns it (hex quantities). */
export type RpcLog = {
  address: Address
  topics: readonly Hex[]
  data: Hex
  blockNumber: Hex | null
  logIndex: Hex | null
  transactionHash: Hex | null
  removed?: boolean
}

const BALANCE_UPDATED = encodeEventTopics({ abi: inferenceServingAbi, eventName: 'BalanceUpdated' })[0] as Hex
const SETTLEMENT_RESULT = encodeEventTopics({ abi: inferenceServingAbi, eventName: 'TEESettlementResult' })[0] as Hex

/** The eth_getLogs filter for the two events of `user` on the InferenceServing contract (user is topic 1 of both). */
export function chargeLogFilter(inference: Address, user: Address, fromBlock: bigint, toBlock: bigint) {
  return {
    address: inference,
    fromBlock: toHex(fromBlock),
    toBlock: toHex(toBlock),
    topics: [[BALANCE_UPDATED, SETTLEMENT_RESULT], pad(user.toLowerCase() as Hex, { size: 32 })],
  }
}

/** Decodes the logs that are BalanceUpdated or TEESettlementResult of `user`, sorted by block then log index. */
export function decodeChargeLogs(logs: readonly RpcLog[], user: Address): ChargeLog[] {
  const who = user.toLowerCase()
  const out: ChargeLog[] = []
  for (const log of logs) {
    if (log.removed || log.blockNumber === null || log.logIndex === null || log.transactionHash === null) continue
    let decoded: ReturnType<typeof decodeEventLog<typeof inferenceServingAbi>>
    try {
      decoded = decodeEventLog({ abi: inferenceServingAbi, topics: log.topics as [Hex, ...Hex[]], data: log.data })
    } catch {
      continue // another event, or one with a shape we do not know: not a charge
    }
    const at = { blockNumber: BigInt(log.blockNumber), logIndex: Number(log.logIndex), txHash: log.transactionHash }
    if (decoded.eventName === 'BalanceUpdated' && decoded.args.user.toLowerCase() === who) {
      out.push({
        kind: 'balance',
        ...at,
        provider: getAddress(decoded.args.provider),
        balance: decoded.args.amount,
        pendingRefund: decoded.args.pendingRefund,
      })
    } else if (decoded.eventName === 'TEESettlementResult' && decoded.args.user.toLowerCase() === who) {
      out.push({
        kind: 'settlement',
        ...at,
        status: settlementStatus[decoded.args.status] ?? 'INVALID_SIGNATURE',
        unsettled: decoded.args.unsettledAmount,
      })
    }
  }
  return out.sort((a, b) =>
    a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1,
  )
}

/** What the scan of the chain established so far; JSON-safe through {@link serializeChargeState}. */
export type ChargeState = {
  /** Identifies the chain and contract the figures belong to (`chainId:inference:user`). */
  key: string
  /** The next block to scan. */
  nextBlock: bigint
  /** Last known sub-account balance per provider (lower-case). */
  balances: Map<string, bigint>
  /** Neuron moved out of the sub-account by settlement, per provider (lower-case). */
  settled: Map<string, bigint>
  settlements: Map<string, number>
  /** Settlements whose amount could not be established (no balance known before them). */
  unknown: Map<string, number>
}

export function emptyChargeState(key: string, fromBlock: bigint): ChargeState {
  return {
    key,
    nextBlock: fromBlock,
    balances: new Map(),
    settled: new Map(),
    settlements: new Map(),
    unknown: new Map(),
  }
}

/**
 * Applies decoded logs to the state. A settlement lowers the balance in `_settleFees`, which emits BalanceUpdated,
 * and the contract then emits the item's TEESettlementResult: so a BalanceUpdated whose next log of this user, in the
 * same transaction, is a TEESettlementResult is a settlement, and the fall of the balance is what was charged.
 * Deposits and refunds emit BalanceUpdated alone and only move the known balance. `balanceBefore` gives the balance
 * before a block when the scan started after the sub-account existed.
 */
export async function applyChargeLogs(
  state: ChargeState,
  logs: readonly ChargeLog[],
  balanceBefore?: (provider: Address, blockNumber: bigint) => Promise<bigint>,
): Promise<void> {
  for (let i = 0; i < logs.length; i++) {
    const log = logs[i]!
    if (log.kind !== 'balance') continue
    const key = log.provider.toLowerCase()
    const next = logs[i + 1]
    const isSettlement = next?.kind === 'settlement' && next.txHash === log.txHash
    if (isSettlement) {
      let before = state.balances.get(key)
      if (before === undefined && balanceBefore)
        before = await balanceBefore(log.provider, log.blockNumber).catch(() => undefined)
      state.settlements.set(key, (state.settlements.get(key) ?? 0) + 1)
      if (before === undefined) state.unknown.set(key, (state.unknown.get(key) ?? 0) + 1)
      else if (before > log.balance) state.settled.set(key, (state.settled.get(key) ?? 0n) + before - log.balance)
      i++ // the result belongs to this settlement
    }
    state.balances.set(key, log.balance)
  }
}

type StateJson = {
  key: string
  nextBlock: string
  balances: Record<string, string>
  settled: Record<string, string>
  settlements: Record<string, number>
  unknown: Record<string, number>
}

const toRecord = <V, T>(m: Map<string, V>, f: (v: V) => T) => Object.fromEntries([...m].map(([k, v]) => [k, f(v)]))

export function serializeChargeState(s: ChargeState): string {
  const json: StateJson = {
    key: s.key,
    nextBlock: s.nextBlock.toString(),
    balances: toRecord(s.balances, String),
    settled: toRecord(s.settled, String),
    settlements: toRecord(s.settlements, Number),
    unknown: toRecord(s.unknown, Number),
  }
  return JSON.stringify(json, null, 2)
}

/** The state saved at `path` if it is for `key` (the same chain, contract and user), else undefined. */
export function readChargeState(path: string, key: string): ChargeState | undefined {
  let json: StateJson
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as StateJson
  } catch {
    return undefined
  }
  if (json.key !== key) return undefined
  const big = (r: Record<string, string>) => new Map(Object.entries(r).map(([k, v]) => [k, BigInt(v)]))
  return {
    key,
    nextBlock: BigInt(json.nextBlock),
    balances: big(json.balances),
    settled: big(json.settled),
    settlements: new Map(Object.entries(json.settlements)),
    unknown: new Map(Object.entries(json.unknown)),
  }
}

export function writeChargeState(path: string, state: ChargeState): void {
  // Through a rename, so a crash never leaves half a file.
  writeFileSync(`${path}.tmp`, serializeChargeState(state))
  renameSync(`${path}.tmp`, path)
}

/** One provider's figures, in neuron. */
export type ReconciliationRow = {
  provider: Address
  /** Moved from the sub-account to the provider by settlement. */
  settled: bigint
  settlements: number
  /** Settlements seen whose amount is unknown (the scan began after the sub-account's last known balance). */
  unknownSettlements: number
  /** What the provider reports as owed and not yet settled; null when it could not be asked. */
  unsettled: bigint | null
  unsettledError?: string
  /** settled + unsettled. */
  charged: bigint
  /** The ledger's total fee of the calls this provider delivered, and of the verified ones. */
  recorded: bigint
  recordedVerified: bigint
  calls: number
  /** charged − recorded, and charged − recordedVerified (negative: charged less). */
  difference: bigint
  differenceVerified: bigint
  /** Charged more than recorded, beyond the tolerance. */
  flagged: boolean
}

export type ReconciliationReport = {
  user: Address
  /** ms since the epoch. */
  at: number
  /** The last block the settlements were read up to. */
  scannedTo: bigint
  /** The chain's head when this was computed: the scan has caught up when scannedTo equals it. */
  latestBlock: bigint
  tolerance: bigint
  rows: ReconciliationRow[]
  flagged: ReconciliationRow[]
  /** Why reading the chain failed in this round (the figures are then those of the last good scan). */
  chainError?: string
}

export type LedgerTotals = ReadonlyArray<{ provider: Address; calls: number; fee: bigint; verifiedFee: bigint }>

/** The arithmetic: one row per provider in either the chain figures or the ledger, sorted by address. */
export function reconcile(params: {
  settled: ReadonlyMap<string, bigint>
  settlements?: ReadonlyMap<string, number>
  unknown?: ReadonlyMap<string, number>
  unsettled: ReadonlyMap<string, bigint | Error>
  ledger: LedgerTotals
  tolerance?: bigint
}): ReconciliationRow[] {
  const tolerance = params.tolerance ?? 0n
  const ledger = new Map(params.ledger.map((l) => [l.provider.toLowerCase(), l]))
  const keys = new Set([...params.settled.keys(), ...params.unsettled.keys(), ...ledger.keys()])
  return [...keys].sort().map((key) => {
    const settled = params.settled.get(key) ?? 0n
    const u = params.unsettled.get(key)
    const unsettled = typeof u === 'bigint' ? u : null
    const charged = settled + (unsettled ?? 0n)
    const l = ledger.get(key)
    const recorded = l?.fee ?? 0n
    const recordedVerified = l?.verifiedFee ?? 0n
    return {
      provider: getAddress(key),
      settled,
      settlements: params.settlements?.get(key) ?? 0,
      unknownSettlements: params.unknown?.get(key) ?? 0,
      unsettled,
      ...(u instanceof Error ? { unsettledError: u.message } : {}),
      charged,
      recorded,
      recordedVerified,
      calls: l?.calls ?? 0,
      difference: charged - recorded,
      differenceVerified: charged - recordedVerified,
      flagged: charged - recorded > tolerance,
    }
  })
}

/** GET {url}/v1/user/{user}/unsettledfee with the wallet's session token (0G provider API). */
export async function fetchUnsettledFee(params: {
  url: string
  user: Address
  authorization: string
  dispatcher?: Dispatcher
  timeoutMs?: number
  signal?: AbortSignal
}): Promise<bigint> {
  // A stranger's answer: capped, no redirects, bounded in time (an endless body must not fill the gateway's memory).
  const res = await fetchJsonGuarded(
    params.dispatcher,
    `${params.url.replace(/\/+$/, '')}/v1/user/${params.user}/unsettledfee`,
    {
      timeoutMs: params.timeoutMs ?? 10_000,
      maxBytes: 64 * 1024,
      headers: { authorization: params.authorization },
      signal: params.signal,
    },
  )
  if (res.status !== 200)
    throw new Error(`unsettledfee answered ${res.status}: ${JSON.stringify(res.json ?? null).slice(0, 200)}`)
  const fee = (res.json as { unsettledFee?: unknown } | null)?.unsettledFee
  if (typeof fee !== 'string' && typeof fee !== 'number') throw new Error('unsettledfee answered without a fee')
  return BigInt(fee)
}

/** Where the reconciler reads the chain: eth_getLogs and the balance before a block, from viem clients. */
export function chainChargeSource(clients: Pick<ZgClients, 'network' | 'publicClient'>, user: Address) {
  const inference = clients.network.contracts.inference
  return {
    key: `${clients.network.chain.id}:${inference.toLowerCase()}:${user.toLowerCase()}`,
    getBlockNumber: () => clients.publicClient.getBlockNumber({ cacheTime: 0 }),
    getLogs: async (fromBlock: bigint, toBlock: bigint) => {
      const logs = (await clients.publicClient.request({
        method: 'eth_getLogs',
        params: [chargeLogFilter(inference, user, fromBlock, toBlock)],
      } as never)) as RpcLog[]
      return decodeChargeLogs(logs, user)
    },
    initialBalances: async (blockNumber: bigint) => {
      const balances = new Map<string, bigint>()
      // Pages of 50, the contract's limit.
      for (let offset = 0n; ; offset += 50n) {
        const [accounts, total] = await clients.publicClient.readContract({
          address: inference,
          abi: inferenceServingAbi,
          functionName: 'getAccountsByUser',
          args: [user, offset, 50n],
          blockNumber,
        })
        for (const a of accounts) balances.set(a.provider.toLowerCase(), a.balance)
        if (offset + 50n >= total || accounts.length === 0) return balances
      }
    },
    // The state at the end of the previous block (needs an archive RPC on a long-running chain).
    balanceBefore: async (provider: Address, blockNumber: bigint) => {
      const account = await clients.publicClient.readContract({
        address: inference,
        abi: inferenceServingAbi,
        functionName: 'getAccount',
        args: [user, provider],
        blockNumber: blockNumber - 1n,
      })
      return account.balance
    },
  }
}

export type ReconcilerOptions = {
  user: Address
  /** Identifies chain, contract and user; a saved state with another key is ignored. */
  key: string
  getBlockNumber: () => Promise<bigint>
  getLogs: (fromBlock: bigint, toBlock: bigint) => Promise<ChargeLog[]>
  balanceBefore?: (provider: Address, blockNumber: bigint) => Promise<bigint>
  /** The provider's unsettled fee for the user (the gateway asks with its session token). */
  unsettledFee: (provider: Address, signal: AbortSignal) => Promise<bigint>
  /** The ledger's fees per provider. */
  ledgerTotals: () => LedgerTotals | Promise<LedgerTotals>
  /** Excess tolerated before a provider is flagged, in neuron. Default 0. */
  tolerance?: bigint
  /**
   * Where the scan starts the first time. Default: the chain's head then, with `initialBalances` (without it, 0: the
   * whole chain).
   */
  fromBlock?: bigint
  /** The user's sub-account balances per provider at a block: the starting point of a scan from the head. */
  initialBalances?: (blockNumber: bigint) => Promise<ReadonlyMap<string, bigint>>
  /** Blocks per eth_getLogs (RPC nodes cap the range). Default 1000. */
  maxRange?: bigint
  /** Ranges read per round, so a long backlog is caught up over several rounds. Default 50. */
  maxRangesPerPoll?: number
  /**
   * How long after asking the providers the ledger is read. A provider records a call before the gateway does
   * (the gateway's record follows the delivery, off the request path); reading later keeps calls in flight from
   * looking like over-charges. Default 0.
   */
  ledgerLagMs?: number
  /** Background round period. Default 60 s. */
  intervalMs?: number
  /** Wait before the first background round, so it stays out of the way of startup. Default 5 s. */
  firstRoundDelayMs?: number
  /** Saved progress (so a restart does not rescan), and where to save it; without saveState nothing is written. */
  loadState?: () => ChargeState | undefined
  saveState?: (state: ChargeState) => void
  log?: (line: string) => void
}

/**
 * Keeps the reconciliation current: each round reads the new settlement logs of the wallet (bounded ranges from a
 * cursor, like the catalog's watch), then each provider's unsettled fee, then the ledger; a provider flagged is
 * logged once per change of its excess, not every round.
 */
export class Reconciler {
  readonly #o: ReconcilerOptions
  #state: ChargeState
  /** No scan yet: the first one decides where to start (see #initialState). */
  #fresh: boolean
  #report: ReconciliationReport | undefined
  #timer: NodeJS.Timeout | undefined
  #running: Promise<ReconciliationReport> | undefined
  #stopped = false
  #wake: (() => void) | undefined
  /** Aborts the provider requests of a round in flight on stop(), which then does not wait for slow providers. */
  readonly #abort = new AbortController()
  /** The excess last logged per flagged provider. */
  readonly #logged = new Map<string, string>()

  constructor(options: ReconcilerOptions) {
    this.#o = options
    const loaded = options.loadState?.()
    this.#state = loaded ?? emptyChargeState(options.key, options.fromBlock ?? 0n)
    this.#fresh = !loaded
  }

  /** The latest report, or undefined before the first round. */
  get report(): ReconciliationReport | undefined {
    return this.#report
  }

  /** Runs rounds every intervalMs until stop(); the first after firstRoundDelayMs. */
  start(): void {
    this.#stopped = false
    const tick = () => {
      if (this.#stopped) return
      this.poll()
        .catch((err) => this.#o.log?.(`reconciliation: round failed: ${(err as Error).message}`))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, this.#o.intervalMs ?? 60_000).unref()
        })
    }
    this.#timer = setTimeout(tick, this.#o.firstRoundDelayMs ?? 5_000).unref()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#wake?.()
    this.#abort.abort()
    await this.#running?.catch(() => undefined)
  }

  /** One round now (a round already running is shared). */
  poll(): Promise<ReconciliationReport> {
    this.#running ??= this.#round().finally(() => {
      this.#running = undefined
    })
    return this.#running
  }

  async #scan(): Promise<bigint> {
    const o = this.#o
    const latest = await o.getBlockNumber()
    if (!this.#fresh && latest + 1n < this.#state.nextBlock) {
      // The chain is behind what we read (a devnet reset): the figures are of another chain; start again.
      o.log?.(`reconciliation: the chain is at block ${latest}, behind the ${this.#state.nextBlock} read: rescanning`)
      this.#fresh = true
    }
    if (this.#fresh) {
      this.#state = await this.#initialState(latest)
      this.#fresh = false
      o.saveState?.(this.#state)
    }
    const range = o.maxRange ?? 1_000n
    for (let n = 0; n < (o.maxRangesPerPoll ?? 50) && this.#state.nextBlock <= latest; n++) {
      const from = this.#state.nextBlock
      const to = from + range - 1n < latest ? from + range - 1n : latest
      const logs = await o.getLogs(from, to)
      // Applied to a copy, so a failure half-way never counts a range twice.
      const next = cloneState(this.#state)
      await applyChargeLogs(next, logs, o.balanceBefore)
      next.nextBlock = to + 1n
      this.#state = next
      o.saveState?.(next)
    }
    return latest
  }

  /**
   * Without a fromBlock, the scan starts at the head, from the sub-accounts' balances there: no history to read and
   * no archive node needed; settlements from then on are counted (earlier ones only lower what looks charged).
   */
  async #initialState(latest: bigint): Promise<ChargeState> {
    const o = this.#o
    if (o.fromBlock !== undefined || !o.initialBalances) return emptyChargeState(o.key, o.fromBlock ?? 0n)
    const state = emptyChargeState(o.key, latest + 1n)
    for (const [provider, balance] of await o.initialBalances(latest))
      state.balances.set(provider.toLowerCase(), balance)
    return state
  }

  async #round(): Promise<ReconciliationReport> {
    const o = this.#o
    let latest = this.#report?.latestBlock ?? 0n
    let chainError: string | undefined
    try {
      // The chain first, the providers after: a settlement landing between the two is then briefly counted
      // nowhere (never twice), so a race can hide a difference for one round but never invent one.
      latest = await this.#scan()
    } catch (err) {
      chainError = (err as Error).message.split('\n')[0]
    }
    const providers = new Set([
      ...this.#state.settled.keys(),
      ...this.#state.balances.keys(),
      ...(await o.ledgerTotals()).map((l) => l.provider.toLowerCase()),
    ])
    const unsettled = new Map<string, bigint | Error>()
    await Promise.all(
      [...providers].map(async (p) => {
        unsettled.set(p, await o.unsettledFee(getAddress(p), this.#abort.signal).catch((err: Error) => err))
      }),
    )
    if (this.#stopped && this.#report) return this.#report
    if (o.ledgerLagMs && !this.#stopped) {
      // Cut short by stop(), which should not wait for it.
      await new Promise<void>((resolve) => {
        this.#wake = resolve
        setTimeout(resolve, o.ledgerLagMs).unref()
      })
      this.#wake = undefined
    }
    const tolerance = o.tolerance ?? 0n
    const rows = reconcile({
      settled: this.#state.settled,
      settlements: this.#state.settlements,
      unknown: this.#state.unknown,
      unsettled,
      ledger: await o.ledgerTotals(),
      tolerance,
    })
    const report: ReconciliationReport = {
      user: o.user,
      at: Date.now(),
      scannedTo: this.#state.nextBlock - 1n,
      latestBlock: latest,
      tolerance,
      rows,
      flagged: rows.filter((r) => r.flagged),
      ...(chainError ? { chainError } : {}),
    }
    this.#logChanges(rows)
    this.#report = report
    return report
  }

  #logChanges(rows: readonly ReconciliationRow[]): void {
    for (const r of rows) {
      const key = r.provider.toLowerCase()
      // Keyed on the excess: more honest traffic moves both figures but is no news.
      const excess = r.difference.toString()
      if (r.flagged && this.#logged.get(key) !== excess) {
        this.#logged.set(key, excess)
        this.#o.log?.(
          `reconciliation: provider ${r.provider} charged ${r.charged} neuron (settled ${r.settled}, unsettled ` +
            `${r.unsettled ?? 'unknown'}) but the ledger recorded ${r.recorded} (${r.recordedVerified} verified): ` +
            `${r.difference} over`,
        )
      } else if (!r.flagged && this.#logged.has(key)) {
        this.#logged.delete(key)
        this.#o.log?.(`reconciliation: provider ${r.provider} is back in line with the ledger`)
      }
    }
  }
}

function cloneState(s: ChargeState): ChargeState {
  return {
    key: s.key,
    nextBlock: s.nextBlock,
    balances: new Map(s.balances),
    settled: new Map(s.settled),
    settlements: new Map(s.settlements),
    unknown: new Map(s.unknown),
  }
}

/** A row or report as JSON: bigints as decimal strings (neuron). */
export function reconciliationJson(report: ReconciliationReport) {
  const row = (r: ReconciliationRow) => ({
    ...r,
    settled: r.settled.toString(),
    unsettled: r.unsettled?.toString() ?? null,
    charged: r.charged.toString(),
    recorded: r.recorded.toString(),
    recordedVerified: r.recordedVerified.toString(),
    difference: r.difference.toString(),
    differenceVerified: r.differenceVerified.toString(),
  })
  return {
    ...report,
    at: new Date(report.at).toISOString(),
    scannedTo: report.scannedTo.toString(),
    latestBlock: report.latestBlock.toString(),
    tolerance: report.tolerance.toString(),
    rows: report.rows.map(row),
    flagged: report.flagged.map(row),
  }
}
