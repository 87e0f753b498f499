import { formatEther, parseEther } from 'viem'

/** 1 0G = 10^18 neuron. Amounts are bigint neuron inside; 0G strings only at the edge. */
export const NEURON_PER_0G = 10n ** 18n

/** Parses an amount in 0G ("3", "0.5") into neuron; rejects anything that is not a plain non-negative decimal. */
export function parse0G(amount: string): bigint {
  const text = amount.trim()
  if (!/^\d+(\.\d{1,18})?$/.test(text) && !/^\.\d{1,18}$/.test(text)) {
    throw new RangeError(`invalid 0G amount "${amount}": use a decimal number such as 3 or 0.5 (at most 18 decimals)`)
  }
  return parseEther(text)
}

/** Formats neuron as a 0G decimal string ("3", "0.000000000000000001"). */
export function format0G(neuron: bigint): string {
  return formatEther(neuron)
}
