import type { Address } from 'viem'
import type { ZgClients } from '../clients.ts'
import { getAccount, type SubAccount } from './get-account.ts'
import { getLedger, type Ledger } from './get-ledger.ts'
import { getLedgerProviders } from './get-ledger-providers.ts'
import { getLockTime } from './get-lock-time.ts'

export type PendingRefund = {
  index: bigint
  amount: bigint
  createdAt: bigint
  /** Chain time (seconds) from which retrieveFund releases it. */
  unlocksAt: bigint
  /** Seconds left until then; 0 when it can be released now. */
  remainingSeconds: bigint
}

export type SubAccountOverview = Pick<
  SubAccount,
  'provider' | 'balance' | 'pendingRefund' | 'acknowledged' | 'nonce' | 'generation'
> & {
  /** balance − pendingRefund: what the provider can still be paid from. */
  spendable: bigint
  refunds: PendingRefund[]
}

export type AccountOverview = {
  user: Address
  /** undefined when the user has no ledger. */
  ledger: (Ledger & { locked: bigint }) | undefined
  subAccounts: SubAccountOverview[]
  lockTime: bigint
  /** The chain's latest block time (seconds), against which lock times are measured. */
  chainTime: bigint
}

/** The ledger and every inference sub-account of `user`, with pending refunds and their remaining lock time. */
export async function getAccountOverview(clients: ZgClients, params: { user: Address }): Promise<AccountOverview> {
  const { user } = params
  const [ledger, lockTime, block] = await Promise.all([
    getLedger(clients, { user }),
    getLockTime(clients),
    clients.publicClient.getBlock({ blockTag: 'latest' }),
  ])
  const chainTime = block.timestamp
  if (!ledger) return { user, ledger: undefined, subAccounts: [], lockTime, chainTime }
  const providers = await getLedgerProviders(clients, { user })
  const accounts = await Promise.all(providers.map((provider) => getAccount(clients, { user, provider })))
  const subAccounts = accounts
    .filter((a): a is SubAccount => a !== undefined)
    .map((a) => ({
      provider: a.provider,
      balance: a.balance,
      pendingRefund: a.pendingRefund,
      spendable: a.balance - a.pendingRefund,
      acknowledged: a.acknowledged,
      nonce: a.nonce,
      generation: a.generation,
      refunds: a.refunds.slice(0, Number(a.validRefundsLength)).map((r) => {
        const unlocksAt = r.createdAt + lockTime
        return {
          index: r.index,
          amount: r.amount,
          createdAt: r.createdAt,
          unlocksAt,
          remainingSeconds: unlocksAt > chainTime ? unlocksAt - chainTime : 0n,
        }
      }),
    }))
  return {
    user,
    ledger: { ...ledger, locked: ledger.totalBalance - ledger.availableBalance },
    subAccounts,
    lockTime,
    chainTime,
  }
}
