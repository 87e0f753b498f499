import type { Abi, ContractFunctionArgs, ContractFunctionName, Hash, TransactionReceipt } from 'viem'
import { requireWallet, type ZgClients } from './clients.ts'
import { toZgError } from './errors.ts'

export type WriteResult = { hash: Hash; receipt: TransactionReceipt }

/**
 * Simulates a contract write first, so a revert is decoded into a ZgContractError and no gas is spent, then sends
 * it and waits for the receipt. A mined but reverted transaction also throws.
 */
export async function writeContract<
  const abi extends Abi,
  functionName extends ContractFunctionName<abi, 'nonpayable' | 'payable'>,
>(
  clients: Pick<ZgClients, 'publicClient' | 'walletClient' | 'progress'>,
  params: {
    address: `0x${string}`
    abi: abi
    functionName: functionName
    args: ContractFunctionArgs<abi, 'nonpayable' | 'payable', functionName>
    value?: bigint
  },
): Promise<WriteResult> {
  const wallet = requireWallet(clients)
  try {
    const { request } = await clients.publicClient.simulateContract({
      // biome-ignore lint/suspicious/noExplicitAny: viem's generic simulate parameters cannot be narrowed here
      ...(params as any),
      account: wallet.account,
    })
    clients.progress?.(`${String(params.functionName)}: sending the transaction…`)
    const hash = await wallet.writeContract(request)
    clients.progress?.(`${String(params.functionName)}: tx ${hash} sent, waiting for it to be mined…`)
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash })
    clients.progress?.(`${String(params.functionName)}: mined in block ${receipt.blockNumber}`)
    if (receipt.status !== 'success') {
      throw new Error(`${String(params.functionName)} transaction ${hash} reverted`)
    }
    return { hash, receipt }
  } catch (err) {
    throw toZgError(err)
  }
}
