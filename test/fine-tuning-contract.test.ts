import { randomUUID } from 'node:crypto'
import { type Hex, keccak256, parseEther, toHex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addLedger } from '../src/chain/actions/add-ledger.ts'
import { getAccount } from '../src/chain/actions/get-account.ts'
import { getLedger } from '../src/chain/actions/get-ledger.ts'
import { refund } from '../src/chain/actions/refund.ts'
import { retrieveFund } from '../src/chain/actions/retrieve-fund.ts'
import { transferFund } from '../src/chain/actions/transfer-fund.ts'
import { createZgClients, type ZgWalletClients } from '../src/chain/clients.ts'
import { ZgContractError } from '../src/chain/errors.ts'
import {
  acknowledgeDeliverable,
  acknowledgeFineTuningSignerByOwner,
  addDeliverable,
  addOrUpdateFineTuningService,
  FINE_TUNING_SERVICE_NAME,
  type FineTuningQuota,
  getDeliverable,
  getFineTuningAccount,
  getFineTuningService,
  listFineTuningServices,
  settleFineTuningFees,
  signVerifierMessage,
} from '../src/chain/fine-tuning/index.ts'
import { customNetwork, type ZgNetwork } from '../src/chain/networks.ts'
import type { WriteResult } from '../src/chain/write-contract.ts'
import { type Anvil, anvilAccount, increaseTime, startAnvil } from '../src/devnet/anvil.ts'
import { type DeployedContracts, deployZgContracts } from '../src/devnet/deploy.ts'

// FineTuningServing's whole life on a real anvil with the real bytecode (SDK 0.9.0): a provider registers, the
// owner acknowledges its TEE signer, a user funds the sub-account through the ledger, deliverables are added,
// acknowledged and settled with the TEE signer's EIP-712 VerifierMessage, in full or at the 30 % penalty.

const QUOTA: FineTuningQuota = { cpuCount: 8n, nodeMemory: 32n, gpuCount: 1n, nodeStorage: 100n, gpuType: 'H100' }
const PRICE_PER_TOKEN = 1_000_000_000n

let anvil: Anvil
let network: ZgNetwork
let contracts: DeployedContracts
let owner: ZgWalletClients
let user: ZgWalletClients
let provider: ZgWalletClients
const tee = privateKeyToAccount(generatePrivateKey())
const userAddress = anvilAccount(1).address
const providerAddress = anvilAccount(2).address

/** Runs `fn` and returns the decoded contract error it must throw. */
async function reverted(fn: () => Promise<unknown>, errorName: string): Promise<ZgContractError> {
  const err = await fn().then(
    () => undefined,
    (x: unknown) => x,
  )
  expect(err).toBeInstanceOf(ZgContractError)
  expect((err as ZgContractError).errorName).toBe(errorName)
  return err as ZgContractError
}

/** A settlement as the provider node makes it: signed by the TEE signer over exactly what is sent. */
async function settle(
  input: { id: string; encryptedSecret: Hex; modelRootHash: Hex; nonce: bigint; taskFee: bigint },
  signer: { signTypedData: typeof tee.signTypedData } = tee,
): Promise<WriteResult> {
  const message = { ...input, user: userAddress }
  const signature = await signVerifierMessage(signer, {
    ...message,
    chainId: anvil.chainId,
    contract: contracts.fineTuning,
  })
  return settleFineTuningFees(provider, { ...message, signature })
}

/** What a settlement moves: the user's ledger, the sub-account, the provider's wallet and the contract's funds. */
async function balances() {
  const [ledger, account, providerWallet, contract] = await Promise.all([
    getLedger(user, { user: userAddress }),
    getFineTuningAccount(user, userAddress, providerAddress),
    user.publicClient.getBalance({ address: providerAddress }),
    user.publicClient.getBalance({ address: contracts.fineTuning }),
  ])
  return {
    ledgerTotal: ledger?.totalBalance ?? 0n,
    ledgerAvailable: ledger?.availableBalance ?? 0n,
    subAccount: account?.balance ?? 0n,
    providerWallet,
    contract,
  }
}

const gasOf = (r: WriteResult) => r.receipt.gasUsed * r.receipt.effectiveGasPrice
const rootHashOf = (text: string) => keccak256(toHex(text))

beforeAll(async () => {
  anvil = await startAnvil({ port: 0 })
  const boot = createZgClients({
    network: customNetwork({
      chainId: anvil.chainId,
      rpcUrl: anvil.rpcUrl,
      contracts: { ledger: '0x', inference: '0x' },
    }),
    account: anvilAccount(0),
  })
  contracts = await deployZgContracts({ ...boot, lockTime: 3600n })
  network = customNetwork({ chainId: anvil.chainId, rpcUrl: anvil.rpcUrl, contracts })
  const clientsOf = (i: number) => createZgClients({ network, account: anvilAccount(i) })
  ;[owner, user, provider] = [clientsOf(0), clientsOf(1), clientsOf(2)]
})
afterAll(async () => {
  await anvil?.stop()
})

describe('FineTuningServing on the real bytecode', () => {
  it('says which contract is missing on a network without fine-tuning', async () => {
    const bare = createZgClients({
      network: customNetwork({
        chainId: anvil.chainId,
        rpcUrl: anvil.rpcUrl,
        contracts: { ...contracts, fineTuning: undefined },
      }),
    })
    await expect(listFineTuningServices(bare)).rejects.toThrow(/no FineTuningServing contract configured/)
  })

  it('registers a provider only with the 100 0G stake, and the owner acknowledges its TEE signer', async () => {
    expect(await getFineTuningService(user, providerAddress)).toBeUndefined()
    const service = {
      url: 'http://127.0.0.1:1',
      quota: QUOTA,
      pricePerToken: PRICE_PER_TOKEN,
      occupied: false,
      models: ['Qwen2.5-0.5B-Instruct'],
      teeSignerAddress: tee.address,
    }
    const low = await reverted(
      () => addOrUpdateFineTuningService(provider, { ...service, stake: parseEther('99') }),
      'InsufficientStake',
    )
    expect(low.args).toEqual([parseEther('99'), parseEther('100')])

    await addOrUpdateFineTuningService(provider, { ...service, stake: parseEther('100') })
    const registered = await getFineTuningService(user, providerAddress)
    expect(registered).toEqual({ ...service, provider: providerAddress, teeSignerAcknowledged: false })

    await acknowledgeFineTuningSignerByOwner(owner, providerAddress)
    expect((await getFineTuningService(user, providerAddress))?.teeSignerAcknowledged).toBe(true)
    expect(await listFineTuningServices(user)).toEqual([{ ...registered, teeSignerAcknowledged: true }])
  })

  it('funds the fine-tuning sub-account through the ledger, apart from inference', async () => {
    expect(await getFineTuningAccount(user, userAddress, providerAddress)).toBeUndefined()
    await addLedger(user, { amount: parseEther('10') })
    await transferFund(user, {
      provider: providerAddress,
      amount: parseEther('5'),
      serviceName: FINE_TUNING_SERVICE_NAME,
    })
    expect(await getFineTuningAccount(user, userAddress, providerAddress)).toEqual({
      user: userAddress,
      provider: providerAddress,
      nonce: 0n,
      balance: parseEther('5'),
      pendingRefund: 0n,
      acknowledged: true,
      deliverables: [],
    })
    expect(await getAccount(user, { user: userAddress, provider: providerAddress })).toBeUndefined()
    expect((await getLedger(user, { user: userAddress }))?.availableBalance).toBe(parseEther('5'))
  })

  const first = randomUUID()
  const firstRoot = rootHashOf('first model')

  it('adds a deliverable, and refuses the next while that one is not acknowledged', async () => {
    expect(await getDeliverable(user, userAddress, providerAddress, first)).toBeUndefined()
    await addDeliverable(provider, { user: userAddress, id: first, modelRootHash: firstRoot })
    const deliverable = await getDeliverable(user, userAddress, providerAddress, first)
    expect(deliverable).toMatchObject({
      id: first,
      modelRootHash: firstRoot,
      encryptedSecret: '0x',
      acknowledged: false,
      settled: false,
    })
    expect(deliverable?.timestamp).toBeGreaterThan(0n)

    const blocked = await reverted(
      () => addDeliverable(provider, { user: userAddress, id: randomUUID(), modelRootHash: rootHashOf('next') }),
      'PreviousDeliverableNotAcknowledged',
    )
    expect(blocked.args).toEqual([first])
    expect(blocked.message).toMatch(/has not acknowledged the previous fine-tuned model/)
    await reverted(
      () => addDeliverable(provider, { user: userAddress, id: first, modelRootHash: firstRoot }),
      'DeliverableAlreadyExists',
    )
  })

  it('charges the full fee once for an acknowledged deliverable, and stores the encrypted key', async () => {
    await acknowledgeDeliverable(user, { provider: providerAddress, id: first })
    expect((await getDeliverable(user, userAddress, providerAddress, first))?.acknowledged).toBe(true)

    const fee = parseEther('1.25')
    const secret: Hex = '0x04a1b2c3d4e5f60718293a4b5c6d7e8f'
    const input = { id: first, encryptedSecret: secret, modelRootHash: firstRoot, nonce: 1n, taskFee: fee }

    // Refused before anything moves: an empty secret, another model hash, a key that is not the TEE signer's.
    await reverted(() => settle({ ...input, encryptedSecret: '0x' }), 'SecretShouldNotBeEmpty')
    const mismatch = await reverted(
      () => settle({ ...input, modelRootHash: rootHashOf('other') }),
      'InvalidVerifierInput',
    )
    expect(mismatch.args).toEqual(['model root hash mismatch'])
    const forged = await reverted(
      () => settle(input, privateKeyToAccount(generatePrivateKey())),
      'InvalidVerifierInput',
    )
    expect(forged.args).toEqual(['TEE settlement validation failed'])
    const tooMuch = await reverted(() => settle({ ...input, taskFee: parseEther('6') }), 'InvalidVerifierInput')
    expect(tooMuch.args).toEqual(['insufficient balance'])

    const before = await balances()
    const receipt = await settle(input)
    const after = await balances()
    expect({
      ledgerTotal: after.ledgerTotal - before.ledgerTotal,
      ledgerAvailable: after.ledgerAvailable - before.ledgerAvailable,
      subAccount: after.subAccount - before.subAccount,
      providerWallet: after.providerWallet - before.providerWallet + gasOf(receipt),
      contract: after.contract - before.contract,
    }).toEqual({ ledgerTotal: -fee, ledgerAvailable: 0n, subAccount: -fee, providerWallet: fee, contract: -fee })

    expect(await getDeliverable(user, userAddress, providerAddress, first)).toMatchObject({
      encryptedSecret: secret,
      acknowledged: true,
      settled: true,
    })
    expect((await getFineTuningAccount(user, userAddress, providerAddress))?.nonce).toBe(1n)

    // Once only: a replay with the same nonce fails on the nonce, a fresh nonce on the deliverable.
    const replay = await reverted(() => settle(input), 'InvalidVerifierInput')
    expect(replay.args).toEqual(['nonce should larger than the current nonce'])
    await reverted(() => settle({ ...input, nonce: 2n }), 'DeliverableAlreadySettled')
    expect(await balances()).toEqual(after)
  })

  const second = randomUUID()
  const secondRoot = rootHashOf('second model')

  it('charges fee × 30 / 100 for a deliverable the user never acknowledged, with an empty secret only', async () => {
    await addDeliverable(provider, { user: userAddress, id: second, modelRootHash: secondRoot })
    const fee = parseEther('2.5')
    const input = { id: second, encryptedSecret: '0x' as Hex, modelRootHash: secondRoot, nonce: 5n, taskFee: fee }
    // The key is never handed over for a model the user did not confirm.
    await reverted(() => settle({ ...input, encryptedSecret: '0x04ff' }), 'SecretShouldBeEmpty')

    const before = await balances()
    const receipt = await settle(input)
    const after = await balances()
    const penalty = (fee * 30n) / 100n
    expect(penalty).toBe(parseEther('0.75'))
    expect({
      ledgerTotal: after.ledgerTotal - before.ledgerTotal,
      subAccount: after.subAccount - before.subAccount,
      providerWallet: after.providerWallet - before.providerWallet + gasOf(receipt),
    }).toEqual({ ledgerTotal: -penalty, subAccount: -penalty, providerWallet: penalty })
    expect(await getDeliverable(user, userAddress, providerAddress, second)).toMatchObject({
      encryptedSecret: '0x',
      acknowledged: false,
      settled: true,
    })
    await reverted(() => settle({ ...input, nonce: 6n }), 'DeliverableAlreadySettled')
  })

  it('after a penalty settlement the sub-account takes no new deliverable until the user empties the ledger', async () => {
    // Contract behaviour (SDK 0.9.0 bytecode): a settled deliverable still counts as "not acknowledged" for the next
    // addDeliverable, and a settled deliverable can no longer be acknowledged. So after a penalty settlement this
    // user–provider pair is blocked; retrieving the funds does not clear it, only the ledger's auto-deletion does
    // (refunding everything deletes the ledger and every sub-account; a new transferFund opens a fresh one).
    await reverted(
      () => acknowledgeDeliverable(user, { provider: providerAddress, id: second }),
      'CannotAcknowledgeSettledDeliverable',
    )
    const third = randomUUID()
    const addThird = () =>
      addDeliverable(provider, { user: userAddress, id: third, modelRootHash: rootHashOf('third') })
    expect((await reverted(addThird, 'PreviousDeliverableNotAcknowledged')).args).toEqual([second])

    await retrieveFund(user, { providers: [providerAddress], serviceName: FINE_TUNING_SERVICE_NAME })
    await increaseTime(anvil.rpcUrl, 3600)
    await retrieveFund(user, { providers: [providerAddress], serviceName: FINE_TUNING_SERVICE_NAME })
    const emptied = await getFineTuningAccount(user, userAddress, providerAddress)
    expect(emptied).toMatchObject({ balance: 0n, pendingRefund: 0n, nonce: 5n })
    expect(emptied?.deliverables.map((d) => [d.id, d.acknowledged, d.settled])).toEqual([
      [first, true, true],
      [second, false, true],
    ])
    await reverted(addThird, 'PreviousDeliverableNotAcknowledged')

    const ledger = await getLedger(user, { user: userAddress })
    await refund(user, { amount: ledger?.totalBalance ?? 0n })
    expect(await getLedger(user, { user: userAddress })).toBeUndefined()
    expect(await getFineTuningAccount(user, userAddress, providerAddress)).toBeUndefined()

    await addLedger(user, { amount: parseEther('3') })
    await transferFund(user, {
      provider: providerAddress,
      amount: parseEther('1'),
      serviceName: FINE_TUNING_SERVICE_NAME,
    })
    await addThird()
    const fresh = await getFineTuningAccount(user, userAddress, providerAddress)
    expect(fresh?.deliverables.map((d) => d.id)).toEqual([third])
    // As in InferenceServing, the settlement nonce survives the deletion, so old signatures cannot be replayed.
    expect(fresh).toMatchObject({ nonce: 5n, balance: parseEther('1') })
  })

  it('decodes a settlement against a deliverable that does not exist', async () => {
    const missing = randomUUID()
    const err = await reverted(
      () => settle({ id: missing, encryptedSecret: '0x', modelRootHash: rootHashOf('x'), nonce: 9n, taskFee: 1n }),
      'DeliverableNotExists',
    )
    expect(err.args).toEqual([missing])
  })
})
