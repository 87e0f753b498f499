import { parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acknowledgeTEESignerByOwner } from '../src/chain/actions/acknowledge-tee-signer-by-owner.ts'
import { addLedger } from '../src/chain/actions/add-ledger.ts'
import { addOrUpdateService } from '../src/chain/actions/add-or-update-service.ts'
import { deleteLedger } from '../src/chain/actions/delete-ledger.ts'
import { depositFund } from '../src/chain/actions/deposit-fund.ts'
import { depositFundFor } from '../src/chain/actions/deposit-fund-for.ts'
import { getAccount } from '../src/chain/actions/get-account.ts'
import { getAccountOverview } from '../src/chain/actions/get-account-overview.ts'
import { getLedger } from '../src/chain/actions/get-ledger.ts'
import { getServiceName } from '../src/chain/actions/get-service-name.ts'
import { refund } from '../src/chain/actions/refund.ts'
import { retrieveFund } from '../src/chain/actions/retrieve-fund.ts'
import { transferFund } from '../src/chain/actions/transfer-fund.ts'
import { createZgClients, type ZgWalletClients } from '../src/chain/clients.ts'
import { ZgContractError } from '../src/chain/errors.ts'
import { customNetwork, type ZgNetwork } from '../src/chain/networks.ts'
import { type Anvil, anvilAccount, increaseTime, startAnvil } from '../src/devnet/anvil.ts'
import { deployZgContracts } from '../src/devnet/deploy.ts'

const LOCK = 3600n
const e = parseEther

let anvil: Anvil
let network: ZgNetwork
let owner: ZgWalletClients
let user: ZgWalletClients
let provider: ZgWalletClients
let other: ZgWalletClients

/** Runs `fn`, expects a decoded contract error, and checks that nothing on-chain moved. */
async function expectRefused(fn: () => Promise<unknown>, errorName: string, hint: RegExp) {
  const before = await snapshot()
  const err = await fn().then(
    () => undefined,
    (x: unknown) => x,
  )
  expect(err).toBeInstanceOf(ZgContractError)
  expect((err as ZgContractError).errorName).toBe(errorName)
  expect((err as ZgContractError).message).toMatch(hint)
  expect(await snapshot()).toEqual(before)
}

async function snapshot() {
  const [ledger, account, wallet, block] = await Promise.all([
    getLedger(user, { user: user.walletClient.account.address }),
    getAccount(user, { user: user.walletClient.account.address, provider: provider.walletClient.account.address }),
    user.publicClient.getBalance({ address: user.walletClient.account.address }),
    // cacheTime 0: viem otherwise answers from a per-client cache (4 s), which can hold a block from before.
    user.publicClient.getBlockNumber({ cacheTime: 0 }),
  ])
  return { ledger, account, wallet, block }
}

beforeAll(async () => {
  anvil = await startAnvil({ port: 0 })
  const clientsOf = (i: number) => createZgClients({ network, account: anvilAccount(i) })
  network = customNetwork({
    chainId: anvil.chainId,
    rpcUrl: anvil.rpcUrl,
    contracts: { ledger: '0x', inference: '0x' },
  })
  const boot = clientsOf(0)
  const contracts = await deployZgContracts({
    publicClient: boot.publicClient,
    walletClient: boot.walletClient,
    lockTime: LOCK,
  })
  network = customNetwork({ chainId: anvil.chainId, rpcUrl: anvil.rpcUrl, contracts })
  ;[owner, user, provider, other] = [clientsOf(0), clientsOf(1), clientsOf(2), clientsOf(3)]
  await addOrUpdateService(provider, {
    service: {
      serviceType: 'chatbot',
      url: 'http://127.0.0.1:1',
      model: 'dev-test',
      verifiability: 'TeeML',
      inputPrice: 1n,
      outputPrice: 2n,
      additionalInfo: '{}',
      teeSignerAddress: provider.walletClient.account.address,
    },
    stake: e('100'),
  })
  await acknowledgeTEESignerByOwner(owner, { provider: provider.walletClient.account.address })
})

afterAll(async () => {
  await anvil?.stop()
})

describe('account lifecycle on the real contracts', () => {
  const me = () => user.walletClient.account.address
  const prov = () => provider.walletClient.account.address

  it('resolves the inference service name from the ledger', async () => {
    expect(await getServiceName(user)).toBe('inference-v1.0')
  })

  it('refuses a ledger below the 3 0G minimum, and changes nothing', async () => {
    await expectRefused(() => addLedger(user, { amount: e('2.5') }), 'MinimumDepositRequired', /minimum of 3(\.0)? 0G/)
    expect(await getLedger(user, { user: me() })).toBeUndefined()
  })

  it('creates the ledger, deposits, and deposits for another address', async () => {
    await addLedger(user, { amount: e('3') })
    await depositFund(user, { amount: e('4') })
    const ledger = await getLedger(user, { user: me() })
    expect(ledger).toMatchObject({ availableBalance: e('7'), totalBalance: e('7') })

    await depositFundFor(user, { recipient: other.walletClient.account.address, amount: e('3') })
    expect(await getLedger(user, { user: other.walletClient.account.address })).toMatchObject({ totalBalance: e('3') })
  })

  it('refuses a first transfer below 1 0G, and changes nothing', async () => {
    await expectRefused(
      () => transferFund(user, { provider: prov(), amount: e('0.5') }),
      'MinimumDepositRequired',
      /minimum of 1(\.0)? 0G/,
    )
  })

  it('refuses a transfer above the available balance', async () => {
    await expectRefused(
      () => transferFund(user, { provider: prov(), amount: e('8') }),
      'InsufficientAvailableBalance',
      /Deposit more/,
    )
  })

  it('opens and acknowledges a sub-account with the first transfer', async () => {
    await transferFund(user, { provider: prov(), amount: e('2') })
    const account = await getAccount(user, { user: me(), provider: prov() })
    expect(account).toMatchObject({ balance: e('2'), pendingRefund: 0n, acknowledged: true })
    expect(await getLedger(user, { user: me() })).toMatchObject({ availableBalance: e('5'), totalBalance: e('7') })
  })

  it('retrieves: a refund starts, locked for the lock time', async () => {
    await retrieveFund(user, { providers: [prov()] })
    const o = await getAccountOverview(user, { user: me() })
    expect(o.lockTime).toBe(LOCK)
    expect(o.subAccounts).toHaveLength(1)
    const sub = o.subAccounts[0]!
    expect(sub).toMatchObject({ balance: e('2'), pendingRefund: e('2'), spendable: 0n })
    expect(sub.refunds).toHaveLength(1)
    expect(sub.refunds[0]!.amount).toBe(e('2'))
    expect(sub.refunds[0]!.remainingSeconds).toBeGreaterThan(LOCK - 60n)
    expect(sub.refunds[0]!.remainingSeconds).toBeLessThanOrEqual(LOCK)
  })

  it('a new transfer to the sub-account cancels pending refunds first', async () => {
    await transferFund(user, { provider: prov(), amount: e('0.5') })
    const account = await getAccount(user, { user: me(), provider: prov() })
    expect(account).toMatchObject({ balance: e('2'), pendingRefund: e('1.5') })
    // Only a cancelled refund was reused: the ledger's available balance did not move.
    expect(await getLedger(user, { user: me() })).toMatchObject({ availableBalance: e('5') })
  })

  it('a second retrieve before the lock releases nothing', async () => {
    await retrieveFund(user, { providers: [prov()] })
    expect(await getLedger(user, { user: me() })).toMatchObject({ availableBalance: e('5') })
  })

  it('a retrieve after the lock releases the refunds to the ledger', async () => {
    await increaseTime(anvil.rpcUrl, Number(LOCK) + 1)
    const o = await getAccountOverview(user, { user: me() })
    expect(o.subAccounts[0]!.refunds.every((r) => r.remainingSeconds === 0n)).toBe(true)
    await retrieveFund(user, { providers: [prov()] })
    const after = await getAccountOverview(user, { user: me() })
    expect(after.ledger).toMatchObject({ availableBalance: e('7'), totalBalance: e('7') })
    expect(after.subAccounts[0]).toMatchObject({ balance: 0n, pendingRefund: 0n })
  })

  it('refuses a refund whose remainder would fall below the minimum, and changes nothing', async () => {
    await expectRefused(
      () => refund(user, { amount: e('5') }),
      'MinimumDepositRequired',
      /would leave 2(\.0)? 0G in the ledger, below the minimum of 3(\.0)? 0G/,
    )
  })

  it('refuses a refund beyond the available balance with refund advice, not settlement advice', async () => {
    await expectRefused(
      () => refund(user, { amount: e('50') }),
      'InsufficientBalance',
      /less available than the amount\. Refund at most its available balance/,
    )
  })

  it('refuses to delete a ledger that still holds funds', async () => {
    await expectRefused(() => deleteLedger(user), 'MustWithdrawAllFundsFirst', /refund them/)
  })

  it('refunds to the wallet, keeping the minimum, then all of it', async () => {
    const before = await user.publicClient.getBalance({ address: me() })
    await refund(user, { amount: e('4') })
    expect(await getLedger(user, { user: me() })).toMatchObject({ totalBalance: e('3') })
    const after = await user.publicClient.getBalance({ address: me() })
    // 4 0G came back, less gas.
    expect(after - before).toBeGreaterThan(e('3.99'))
    await refund(user, { amount: e('3') })
  })

  it('a ledger emptied to 0 is gone; deleting it again is a clear error', async () => {
    expect(await getLedger(user, { user: me() })).toBeUndefined()
    await expectRefused(() => deleteLedger(user), 'LedgerNotExists', /account create/)
  })
})
