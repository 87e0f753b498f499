import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Address, encodeAbiParameters, encodeEventTopics, type Hex, toHex } from 'viem'
import { describe, expect, it } from 'vitest'
import { inferenceServingAbi } from '../chain/abi/inference-serving.ts'
import {
  applyChargeLogs,
  type ChargeLog,
  chargeLogFilter,
  decodeChargeLogs,
  emptyChargeState,
  Reconciler,
  type RpcLog,
  readChargeState,
  reconcile,
  writeChargeState,
} from './reconciliation.ts'
import { UsageLedger } from './usage-ledger.ts'

const USER = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address
const OTHER = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address
const P1 = '0x90F79bf6EB2c4f870365E785982E1f101E93b906' as Address
const P2 = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65' as Address
const INFERENCE = '0x5FbDB2315678afecb367f032d93F642f64180aa3' as Address

let seq = 0
const tx = (n: number) => toHex(n, { size: 32 })

function balanceLog(p: { user?: Address; provider: Address; balance: bigint; block: number; tx: number }): RpcLog {
  return {
    address: INFERENCE,
    topics: encodeEventTopics({
      abi: inferenceServingAbi,
      eventName: 'BalanceUpdated',
      args: { user: p.user ?? USER, provider: p.provider },
    }) as Hex[],
    data: encodeAbiParameters([{ type: 'uint256' }, { type: 'uint256' }], [p.balance, 0n]),
    blockNumber: toHex(p.block),
    logIndex: toHex(seq++),
    transactionHash: tx(p.tx),
  }
}

function resultLog(p: { user?: Address; status: number; unsettled: bigint; block: number; tx: number }): RpcLog {
  return {
    address: INFERENCE,
    topics: encodeEventTopics({
      abi: inferenceServingAbi,
      eventName: 'TEESettlementResult',
      args: { user: p.user ?? USER },
    }) as Hex[],
    data: encodeAbiParameters([{ type: 'uint8' }, { type: 'uint256' }], [p.status, p.unsettled]),
    blockNumber: toHex(p.block),
    logIndex: toHex(seq++),
    transactionHash: tx(p.tx),
  }
}

describe('decoding the charge events', () => {
  it('decodes BalanceUpdated and TEESettlementResult of the user, in chain order, and nothing else', () => {
    const logs = [
      resultLog({ status: 1, unsettled: 7n, block: 5, tx: 2 }),
      balanceLog({ provider: P1, balance: 100n, block: 3, tx: 1 }),
      balanceLog({ user: OTHER, provider: P1, balance: 9n, block: 4, tx: 3 }),
      { ...balanceLog({ provider: P1, balance: 1n, block: 6, tx: 4 }), removed: true },
      { ...balanceLog({ provider: P1, balance: 1n, block: 6, tx: 4 }), topics: [tx(99)] },
    ]
    const decoded = decodeChargeLogs(logs, USER)
    expect(decoded).toEqual([
      expect.objectContaining({ kind: 'balance', blockNumber: 3n, provider: P1, balance: 100n, txHash: tx(1) }),
      expect.objectContaining({ kind: 'settlement', blockNumber: 5n, status: 'PARTIAL', unsettled: 7n }),
    ])
  })

  it('asks eth_getLogs for both events with the user as topic 1', () => {
    const f = chargeLogFilter(INFERENCE, USER, 10n, 20n)
    expect(f).toMatchObject({ address: INFERENCE, fromBlock: '0xa', toBlock: '0x14' })
    expect(f.topics[0]).toHaveLength(2)
    expect(f.topics[1]).toBe(`0x000000000000000000000000${USER.slice(2).toLowerCase()}`)
  })
})

describe('charges from the events', () => {
  it('counts the fall of the balance in a settlement, not deposits nor refunds', async () => {
    const logs = decodeChargeLogs(
      [
        balanceLog({ provider: P1, balance: 5_000n, block: 1, tx: 1 }), // addAccount
        balanceLog({ provider: P1, balance: 4_700n, block: 2, tx: 2 }), // settlement of 300
        resultLog({ status: 0, unsettled: 0n, block: 2, tx: 2 }),
        balanceLog({ provider: P1, balance: 6_700n, block: 3, tx: 3 }), // deposit
        balanceLog({ provider: P1, balance: 6_000n, block: 4, tx: 4 }), // refund processed
        balanceLog({ provider: P2, balance: 1_000n, block: 5, tx: 5 }),
        balanceLog({ provider: P1, balance: 5_950n, block: 6, tx: 6 }), // settlement of 50...
        resultLog({ status: 0, unsettled: 0n, block: 6, tx: 6 }),
        resultLog({ status: 4, unsettled: 10n, block: 6, tx: 6 }), // ...and a failed item for the same user
      ],
      USER,
    )
    const state = emptyChargeState('k', 0n)
    await applyChargeLogs(state, logs)
    expect(state.settled.get(P1.toLowerCase())).toBe(350n)
    expect(state.settlements.get(P1.toLowerCase())).toBe(2)
    expect(state.settled.get(P2.toLowerCase())).toBeUndefined()
    expect(state.balances.get(P1.toLowerCase())).toBe(5_950n)
  })

  it('reads the balance before a settlement when the scan began after the sub-account, else counts it unknown', async () => {
    const logs = decodeChargeLogs(
      [
        balanceLog({ provider: P1, balance: 900n, block: 8, tx: 1 }),
        resultLog({ status: 0, unsettled: 0n, block: 8, tx: 1 }),
        balanceLog({ provider: P2, balance: 10n, block: 9, tx: 2 }),
        resultLog({ status: 1, unsettled: 5n, block: 9, tx: 2 }),
      ],
      USER,
    )
    const state = emptyChargeState('k', 0n)
    const asked: Array<[Address, bigint]> = []
    await applyChargeLogs(state, logs, async (provider, block) => {
      asked.push([provider, block])
      if (provider === P2) throw new Error('no archive')
      return 1_000n
    })
    expect(asked).toEqual([
      [P1, 8n],
      [P2, 9n],
    ])
    expect(state.settled.get(P1.toLowerCase())).toBe(100n)
    expect(state.unknown.get(P2.toLowerCase())).toBe(1)
  })

  it('saves and loads its progress, only for the same chain, contract and user', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-recon-'))
    try {
      const state = emptyChargeState('1:0xabc:0xdef', 42n)
      state.settled.set('0x01', 2n ** 80n)
      state.settlements.set('0x01', 3)
      const path = join(dir, 'state.json')
      writeChargeState(path, state)
      expect(readChargeState(path, '1:0xabc:0xdef')).toEqual(state)
      expect(readChargeState(path, '2:0xabc:0xdef')).toBeUndefined()
      expect(readChargeState(join(dir, 'missing.json'), 'k')).toBeUndefined()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('the arithmetic', () => {
  const ledger = [
    { provider: P1.toLowerCase() as Address, calls: 3, fee: 1_000n, verifiedFee: 800n },
    { provider: P2.toLowerCase() as Address, calls: 1, fee: 500n, verifiedFee: 500n },
  ]

  it('charged = settled + unsettled, against all recorded and verified fees; flags only an excess', () => {
    const rows = reconcile({
      settled: new Map([
        [P1.toLowerCase(), 600n],
        [P2.toLowerCase(), 500n],
      ]),
      unsettled: new Map<string, bigint | Error>([
        [P1.toLowerCase(), 400n],
        [P2.toLowerCase(), 1n],
      ]),
      ledger,
    })
    const [a, b] = [rows.find((r) => r.provider === P1)!, rows.find((r) => r.provider === P2)!]
    expect(a).toMatchObject({ charged: 1_000n, recorded: 1_000n, difference: 0n, differenceVerified: 200n })
    expect(a.flagged).toBe(false)
    expect(b).toMatchObject({ charged: 501n, recorded: 500n, difference: 1n, flagged: true })
  })

  it('a tolerance absorbs that much excess; less charged is never flagged; an unknown unsettled counts 0', () => {
    const rows = reconcile({
      settled: new Map([[P2.toLowerCase(), 501n]]),
      unsettled: new Map<string, bigint | Error>([
        [P1.toLowerCase(), new Error('down')],
        [P2.toLowerCase(), 0n],
      ]),
      ledger,
      tolerance: 1n,
    })
    expect(rows.find((r) => r.provider === P2)).toMatchObject({ difference: 1n, flagged: false })
    expect(rows.find((r) => r.provider === P1)).toMatchObject({
      unsettled: null,
      unsettledError: 'down',
      difference: -1_000n,
      flagged: false,
    })
  })
})

describe('Reconciler', () => {
  function harness(opts: { latest: bigint; logs: ChargeLog[] }) {
    const ranges: Array<[bigint, bigint]> = []
    const lines: string[] = []
    let unsettled = 0n
    const chain = { latest: opts.latest }
    const reconciler = new Reconciler({
      user: USER,
      key: 'k',
      getBlockNumber: async () => chain.latest,
      getLogs: async (from, to) => {
        ranges.push([from, to])
        return opts.logs.filter((l) => l.blockNumber >= from && l.blockNumber <= to)
      },
      unsettledFee: async () => unsettled,
      ledgerTotals: () => [{ provider: P1, calls: 1, fee: 300n, verifiedFee: 300n }],
      maxRange: 10n,
      maxRangesPerPoll: 2,
      log: (l) => lines.push(l),
    })
    return { reconciler, ranges, lines, chain, setUnsettled: (v: bigint) => (unsettled = v) }
  }

  const settlement = decodeChargeLogs(
    [
      balanceLog({ provider: P1, balance: 1_000n, block: 2, tx: 1 }),
      balanceLog({ provider: P1, balance: 700n, block: 25, tx: 2 }),
      resultLog({ status: 0, unsettled: 0n, block: 25, tx: 2 }),
    ],
    USER,
  )

  it('reads bounded ranges from its cursor, a few per round, and logs a flagged provider once per change', async () => {
    const h = harness({ latest: 30n, logs: settlement })
    let report = await h.reconciler.poll()
    expect(h.ranges).toEqual([
      [0n, 9n],
      [10n, 19n],
    ])
    expect(report.scannedTo).toBe(19n)
    report = await h.reconciler.poll()
    expect(h.ranges.slice(2)).toEqual([
      [20n, 29n],
      [30n, 30n],
    ])
    expect(report.rows[0]).toMatchObject({ provider: P1, settled: 300n, charged: 300n, recorded: 300n, flagged: false })
    expect(h.lines).toEqual([])

    h.setUnsettled(40n)
    report = await h.reconciler.poll()
    expect(report.flagged).toHaveLength(1)
    expect(report.flagged[0]).toMatchObject({ difference: 40n })
    await h.reconciler.poll()
    expect(h.lines).toHaveLength(1)
    expect(h.lines[0]).toContain(`provider ${P1} charged 340 neuron`)
    h.setUnsettled(41n)
    await h.reconciler.poll()
    expect(h.lines).toHaveLength(2)
    h.setUnsettled(0n)
    await h.reconciler.poll()
    expect(h.lines[2]).toContain('back in line')
  })

  it('keeps its figures when the chain cannot be read, and says why', async () => {
    const h = harness({ latest: 5n, logs: settlement })
    await h.reconciler.poll()
    h.chain.latest = 6n
    const failing = new Reconciler({
      user: USER,
      key: 'k',
      getBlockNumber: async () => {
        throw new Error('rpc down\nstack')
      },
      getLogs: async () => [],
      unsettledFee: async () => 0n,
      ledgerTotals: () => [],
    })
    const report = await failing.poll()
    expect(report.chainError).toBe('rpc down')
    expect(report.rows).toEqual([])
  })
})

describe('Reconciler.stop', () => {
  it('aborts the provider requests of a round in flight instead of waiting for a slow provider', async () => {
    let signal: AbortSignal | undefined
    const reconciler = new Reconciler({
      user: USER,
      key: 'k',
      getBlockNumber: async () => 0n,
      getLogs: async () => [],
      unsettledFee: (_p, s) => {
        signal = s
        return new Promise((_resolve, reject) => s.addEventListener('abort', () => reject(new Error('aborted'))))
      },
      ledgerTotals: () => [{ provider: P1, calls: 1, fee: 1n, verifiedFee: 1n }],
    })
    const round = reconciler.poll()
    await new Promise((r) => setTimeout(r, 20))
    const started = Date.now()
    await reconciler.stop()
    expect(signal?.aborted).toBe(true)
    expect(Date.now() - started).toBeLessThan(1_000)
    expect((await round).rows[0]).toMatchObject({ unsettled: null, unsettledError: 'aborted' })
  })
})

describe('UsageLedger.feesByProvider', () => {
  it('sums every fee per provider as bigints, and the verified ones apart', () => {
    const ledger = new UsageLedger(':memory:')
    const base = {
      createdAt: 1,
      apiKeyId: null,
      model: 'm',
      endpoint: 'chat/completions',
      stream: false,
      status: 200,
      inputUnits: 1n,
      outputUnits: 1n,
      resKey: null,
      latencyMs: 1,
      deliveredBytes: 1,
      verificationLevel: null,
      verificationDetail: null,
    }
    const big = 2n ** 70n
    ledger.record({ ...base, requestId: 'a', provider: P1, fee: big, verification: 'verified' })
    ledger.record({ ...base, requestId: 'b', provider: P1, fee: 3n, verification: 'unverified' })
    ledger.record({ ...base, requestId: 'c', provider: P2, fee: 5n, verification: 'pending' })
    ledger.setVerification('c', 'verified', 'L1', null)
    expect(ledger.feesByProvider()).toEqual(
      expect.arrayContaining([
        { provider: P1.toLowerCase(), calls: 2, fee: big + 3n, verifiedFee: big },
        { provider: P2.toLowerCase(), calls: 1, fee: 5n, verifiedFee: 5n },
      ]),
    )
    ledger.close()
  })
})

describe('Reconciler starting at the head', () => {
  it('without fromBlock, starts after the head from the balances there, and counts only later settlements', async () => {
    const logs = decodeChargeLogs(
      [
        balanceLog({ provider: P1, balance: 800n, block: 4, tx: 1 }), // before the head: not read
        resultLog({ status: 0, unsettled: 0n, block: 4, tx: 1 }),
        balanceLog({ provider: P1, balance: 750n, block: 12, tx: 2 }),
        resultLog({ status: 0, unsettled: 0n, block: 12, tx: 2 }),
      ],
      USER,
    )
    let latest = 10n
    const ranges: Array<[bigint, bigint]> = []
    const saved: bigint[] = []
    const reconciler = new Reconciler({
      user: USER,
      key: 'k',
      getBlockNumber: async () => latest,
      getLogs: async (from, to) => {
        ranges.push([from, to])
        return logs.filter((l) => l.blockNumber >= from && l.blockNumber <= to)
      },
      initialBalances: async (block) => {
        expect(block).toBe(10n)
        return new Map([[P1, 800n]])
      },
      unsettledFee: async () => 0n,
      ledgerTotals: () => [],
      saveState: (s) => saved.push(s.nextBlock),
    })
    let report = await reconciler.poll()
    expect(ranges).toEqual([])
    expect(report.scannedTo).toBe(10n)
    latest = 15n
    report = await reconciler.poll()
    expect(ranges).toEqual([[11n, 15n]])
    expect(report.rows[0]).toMatchObject({ provider: P1, settled: 50n, settlements: 1, unknownSettlements: 0 })
    expect(saved).toEqual([11n, 16n])
  })
})
