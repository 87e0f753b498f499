import { getAddress, isAddress } from 'viem'
import { addLedger } from '../chain/actions/add-ledger.ts'
import { deleteLedger } from '../chain/actions/delete-ledger.ts'
import { depositFund } from '../chain/actions/deposit-fund.ts'
import { depositFundFor } from '../chain/actions/deposit-fund-for.ts'
import { type AccountOverview, getAccountOverview } from '../chain/actions/get-account-overview.ts'
import { getLedgerProviders } from '../chain/actions/get-ledger-providers.ts'
import { refund } from '../chain/actions/refund.ts'
import { retrieveFund } from '../chain/actions/retrieve-fund.ts'
import { transferFund } from '../chain/actions/transfer-fund.ts'
import { format0G, parse0G } from '../chain/units.ts'
import type { WriteResult } from '../chain/write-contract.ts'
import type { FundingJson } from '../gateway/admin/funding.ts'
import { adminCall, adminKeyOf } from './admin-client.ts'
import { type Command, type CommandGroup, requireAddress, requireString, UsageError, type Values } from './command.ts'
import { clientsFrom, networkOptions } from './network-options.ts'
import { formatDuration, printJson, table } from './output.ts'

function amountOf(values: Values): bigint {
  const text = requireString(values, 'amount')
  try {
    return parse0G(text)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** Prints the outcome of one transaction, as text or JSON. */
function report(values: Values, action: string, result: WriteResult, details: Record<string, unknown>, text: string) {
  if (values.json) printJson({ action, ...details, txHash: result.hash, blockNumber: result.receipt.blockNumber })
  else console.log(`${text}\ntx ${result.hash}`)
  return 0
}

const amountOption = { amount: { type: 'string', description: 'amount in 0G, e.g. 3 or 0.5' } } as const

const create: Command = {
  summary: 'Create the ledger (main account), funded with --amount (at least 3 0G on mainnet)',
  options: { ...networkOptions, ...amountOption },
  async run(values) {
    const amount = amountOf(values)
    const clients = await clientsFrom(values, true)
    const result = await addLedger(clients, { amount })
    return report(
      values,
      'create',
      result,
      { user: clients.address, amount },
      `Ledger created with ${format0G(amount)} 0G`,
    )
  },
}

const deposit: Command = {
  summary: 'Deposit --amount into the ledger (or into the ledger of --for)',
  options: {
    ...networkOptions,
    ...amountOption,
    for: { type: 'string', description: 'deposit into this address’s ledger instead of your own' },
  },
  async run(values) {
    const amount = amountOf(values)
    const clients = await clientsFrom(values, true)
    if (values.for !== undefined) {
      const recipient = requireAddress(values, 'for')
      const result = await depositFundFor(clients, { recipient, amount })
      return report(
        values,
        'deposit',
        result,
        { recipient, amount },
        `Deposited ${format0G(amount)} 0G for ${recipient}`,
      )
    }
    const result = await depositFund(clients, { amount })
    return report(values, 'deposit', result, { recipient: clients.address, amount }, `Deposited ${format0G(amount)} 0G`)
  },
}

const transfer: Command = {
  summary: 'Move --amount from the ledger into the sub-account with --provider (at least 1 0G to open one)',
  options: { ...networkOptions, ...amountOption, provider: { type: 'string', description: 'provider address' } },
  async run(values) {
    const amount = amountOf(values)
    const provider = requireAddress(values, 'provider')
    const clients = await clientsFrom(values, true)
    const result = await transferFund(clients, { provider, amount })
    return report(
      values,
      'transfer',
      result,
      { provider, amount },
      `Transferred ${format0G(amount)} 0G to the sub-account with ${provider}`,
    )
  },
}

const retrieve: Command = {
  summary:
    'Retrieve funds from sub-accounts: releases matured refunds to the ledger and starts refunds of the rest (run again after the lock time)',
  options: {
    ...networkOptions,
    provider: {
      type: 'string',
      multiple: true,
      description: 'only this provider (repeatable); default: every sub-account',
    },
  },
  async run(values) {
    const clients = await clientsFrom(values, true)
    const chosen = (values.provider as string[] | undefined) ?? []
    for (const p of chosen)
      if (!isAddress(p, { strict: false })) throw new UsageError(`--provider is not an address: ${p}`)
    const providers = chosen.length
      ? chosen.map((p) => getAddress(p))
      : await getLedgerProviders(clients, { user: clients.address! })
    if (providers.length === 0) throw new UsageError('There are no sub-accounts to retrieve from.')
    const before = await getAccountOverview(clients, { user: clients.address! })
    const result = await retrieveFund(clients, { providers })
    const after = await getAccountOverview(clients, { user: clients.address! })
    const released = (after.ledger?.availableBalance ?? 0n) - (before.ledger?.availableBalance ?? 0n)
    const pending = after.subAccounts.reduce((sum, a) => sum + a.pendingRefund, 0n)
    return report(
      values,
      'retrieve',
      result,
      { providers, released, pendingRefund: pending, lockTime: after.lockTime },
      `Released ${format0G(released)} 0G to the ledger; ${format0G(pending)} 0G pending refund (lock ${formatDuration(after.lockTime)}).`,
    )
  },
}

const refundCommand: Command = {
  summary: 'Withdraw --amount from the ledger to the wallet (the remainder must be 0 or at least the minimum)',
  options: { ...networkOptions, ...amountOption },
  async run(values) {
    const amount = amountOf(values)
    const clients = await clientsFrom(values, true)
    // Said with the figures before any transaction: what is available, and where the rest sits.
    const { ledger } = await getAccountOverview(clients, { user: clients.address! })
    if (ledger && amount > ledger.availableBalance) {
      const locked =
        ledger.locked > 0n
          ? `; ${format0G(ledger.locked)} 0G more sits in sub-accounts (zg-gateway account retrieve moves it back, after the lock time)`
          : ''
      throw new UsageError(
        `The ledger has ${format0G(ledger.availableBalance)} 0G available, less than the ${format0G(amount)} 0G asked: refund at most that${locked}.`,
      )
    }
    const result = await refund(clients, { amount })
    return report(values, 'refund', result, { amount }, `Refunded ${format0G(amount)} 0G to ${clients.address}`)
  },
}

const remove: Command = {
  summary: 'Delete the ledger (its total balance must be 0)',
  options: { ...networkOptions },
  async run(values) {
    const clients = await clientsFrom(values, true)
    const result = await deleteLedger(clients)
    return report(values, 'delete', result, { user: clients.address }, 'Ledger deleted')
  },
}

type FundingBody = { autoFund: boolean; wallet: string; providers: FundingJson[] }

function showText(o: AccountOverview): string {
  if (!o.ledger) return `${o.user} has no ledger. Create one: zg-gateway account create --amount 3`
  const lines = [
    `Ledger of ${o.user}`,
    table([
      ['total', 'available', 'in sub-accounts'],
      [format0G(o.ledger.totalBalance), format0G(o.ledger.availableBalance), format0G(o.ledger.locked)].map(
        (v) => `${v} 0G`,
      ),
    ]),
  ]
  if (o.subAccounts.length === 0) {
    lines.push('', 'No sub-accounts.')
    return lines.join('\n')
  }
  lines.push('', 'Sub-accounts')
  lines.push(
    table([
      ['provider', 'balance', 'pending refund', 'spendable', 'acknowledged'],
      ...o.subAccounts.map((a) => [
        a.provider,
        `${format0G(a.balance)} 0G`,
        `${format0G(a.pendingRefund)} 0G`,
        `${format0G(a.spendable)} 0G`,
        a.acknowledged ? 'yes' : 'no',
      ]),
    ]),
  )
  const refunds = o.subAccounts.flatMap((a) => a.refunds.map((r) => ({ provider: a.provider, ...r })))
  if (refunds.length) {
    lines.push('', `Pending refunds (lock time ${formatDuration(o.lockTime)})`)
    lines.push(
      table([
        ['provider', 'amount', 'unlocks in'],
        ...refunds.map((r) => [r.provider, `${format0G(r.amount)} 0G`, formatDuration(r.remainingSeconds)]),
      ]),
    )
  }
  return lines.join('\n')
}

/** The policy's side: per provider its state and why, and the gateway's own figures beside the chain's. */
function fundingText(body: FundingBody, gateway: string): string {
  const lines = ['', '', `Funding policy of the gateway at ${gateway} (its wallet ${body.wallet})`]
  if (!body.autoFund) return [...lines, 'Off: the gateway does not fund sub-accounts (autoFund false).'].join('\n')
  if (!body.providers.length) return [...lines, 'No provider funded yet by this gateway process.'].join('\n')
  const g = (v: string | null) => (v === null ? '-' : `${format0G(BigInt(v))} 0G`)
  lines.push(
    table([
      ['provider', 'state', 'unsettled', 'verified credit', 'target', 'disputed', 'why'],
      ...body.providers.map((p) => [
        p.provider,
        p.state === 'stopped' ? `stopped: ${p.disputed} disputed` : p.state,
        `${g(p.unsettled)} (${p.unsettledSource})`,
        g(p.credit),
        g(p.target),
        `${p.disputed}/${p.checked}`,
        p.reason ?? (p.state === 'funded' ? 'balance − pending refund ≥ unsettled + expected + reserve' : ''),
      ]),
    ]),
  )
  return lines.join('\n')
}

const show: Command = {
  summary:
    'Show the ledger and every sub-account, with pending refunds and their remaining lock time; with --gateway, also the funding policy of that running gateway',
  options: {
    ...networkOptions,
    address: { type: 'string', description: 'show this address instead of the wallet' },
    gateway: { type: 'string', description: "a running gateway's URL: adds its funding policy (GET /admin/funding)" },
    'admin-key': { type: 'string', description: "the gateway's admin key (default: ZG_ADMIN_KEY)" },
  },
  async run(values) {
    const clients = await clientsFrom(values, values.address === undefined)
    const user = values.address !== undefined ? requireAddress(values, 'address') : clients.address!
    const gateway = values.gateway as string | undefined
    const [overview, funding] = await Promise.all([
      getAccountOverview(clients, { user }),
      gateway ? adminCall<FundingBody>(gateway, adminKeyOf(values), 'GET', '/funding') : undefined,
    ])
    if (values.json) printJson(funding ? { ...overview, funding } : overview)
    else console.log(showText(overview) + (funding && gateway ? fundingText(funding, gateway) : ''))
    return 0
  },
}

const resume: Command = {
  summary:
    'Let a running gateway fund and route to a provider its policy stopped for disputed responses (its past disputes no longer count)',
  args: '<provider address>',
  options: {
    gateway: { type: 'string', description: "the running gateway's URL" },
    'admin-key': { type: 'string', description: "the gateway's admin key (default: ZG_ADMIN_KEY)" },
  },
  async run(values, positionals) {
    const provider = positionals[0]
    const gateway = values.gateway as string | undefined
    if (!provider || !gateway)
      throw new UsageError('usage: zg-gateway account resume <provider address> --gateway <url>')
    const status = await adminCall<FundingJson>(gateway, adminKeyOf(values), 'POST', `/funding/${provider}/resume`)
    if (values.json) printJson(status)
    else console.log(`${status.provider}: ${status.state}${status.reason ? ` (${status.reason})` : ''}; routed again`)
    return 0
  },
}

export const accountGroup: CommandGroup = {
  summary: 'Manage the 0G ledger (main account) and provider sub-accounts (escrow)',
  commands: { show, create, deposit, transfer, retrieve, refund: refundCommand, delete: remove, resume },
}
