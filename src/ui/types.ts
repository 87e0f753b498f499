/** The JSON the UI reads, as the gateway's routes write it (docs/admin-api.md, docs/verification.md). */

export type ModelObject = {
  id: string
  service_type: string
  alias_for?: string
  providers: Array<{
    address: string
    verifiability: string
    input_price: string
    output_price: string
    healthy: boolean
  }>
}

export type Breaker = {
  state: 'closed' | 'open' | 'half-open'
  failures: number
  errorRate: number
  ttfbMs?: number
  throughput?: number
  openedAt?: number
  nextProbeAt?: number
  lastReportAt?: number
}

export type ProviderRow = {
  provider: string
  serviceType: string
  models: string[]
  url: string
  inputPrice: string
  outputPrice: string
  verifiability: string
  level: string
  healthy: boolean
  flagged: boolean
  headroom: string | null
  breaker: Breaker
}

export type FundingRow = {
  provider: string
  state: string
  reason: string | null
  balance: string | null
  pendingRefund: string | null
  unsettled: string
  expected: string
  reserve: string
  target: string | null
  credit: string
  verified: string
  movedIn: string
  checked: number
  disputed: number
  routed: boolean
}

export type Funding = { autoFund: boolean; wallet: string; providers: FundingRow[] }

export type KeyInfo = {
  id: string
  name: string
  prefix: string
  createdAt: string
  lastUsedAt: string | null
  revokedAt: string | null
  expiresAt: string | null
  allowedModels: string[]
  minVerification: string
  teeOnly: boolean
  budget: string | null
  budgetPeriod: string | null
  spent: string
  reserved: string
  rpm: number | null
  tpm: number | null
}

export type UsageRow = {
  key?: string
  keyName?: string | null
  model?: string
  provider?: string
  day?: string
  calls: number
  fee: string
  verified: number
  verifiedFee: string
  failed: number
}

export type UsageReport = {
  since: string | null
  by: string[]
  calls: number
  verified: number
  total: string
  verifiedTotal: string
  rows: UsageRow[]
}

export type ReconciliationRow = {
  provider: string
  settled: string
  settlements: number
  unsettled: string | null
  unsettledError?: string
  charged: string
  recorded: string
  calls: number
  difference: string
  flagged: boolean
}

export type Reconciliation = {
  user: string
  at: string
  scannedTo: string
  latestBlock: string
  tolerance: string
  rows: ReconciliationRow[]
  chainError?: string
}

export type Receipt = {
  id: string
  created: number
  provider: string
  model: string
  endpoint: string
  status: number
  usage: { input: string; output: string }
  fee: string
  delivered_bytes: number
  verification: { status: string; level: string | null; detail: string | null }
  signed: { format: string; gateway: string; signature: string; payload: string } | null
}
