import { getAddress, isAddress } from 'viem'
import type { ProviderSort, RoutingControls } from '../providers/ranking.ts'
import { badHeader } from './verification-policy.ts'

/** The request headers of routing controls, as 0G Router names them (0g-protocol.md §10; docs/routing.md). */
export const ROUTING_HEADERS = {
  provider: 'x-0g-provider-address',
  sort: 'x-0g-provider-sort',
  allowFallbacks: 'x-0g-provider-allow-fallbacks',
  maxPricePrompt: 'x-0g-provider-max-price-prompt',
  maxPriceCompletion: 'x-0g-provider-max-price-completion',
} as const

const SORTS: ReadonlySet<string> = new Set<ProviderSort>(['price', 'latency', 'throughput'])
/** A neuron amount: a decimal integer that fits a uint256. */
const NEURON = /^\d{1,78}$/

/**
 * The routing controls of one call: the key's defaults, overridden by the request's headers (a header's price
 * ceiling can only lower the key's). Undefined when neither asks for anything (the router's default order). A
 * header it cannot read is a 400 naming it.
 */
export function routingControlsOf(
  headers: (name: string) => string | undefined,
  defaults?: Partial<RoutingControls>,
): RoutingControls | undefined {
  const read = (name: string) => headers(name)?.trim() || undefined
  const controls: RoutingControls = { ...defaults, allowFallbacks: defaults?.allowFallbacks ?? true }

  const provider = read(ROUTING_HEADERS.provider)
  if (provider !== undefined) {
    if (!isAddress(provider, { strict: false })) throw badHeader(ROUTING_HEADERS.provider, provider, 'an address')
    controls.provider = getAddress(provider)
  }
  const sort = read(ROUTING_HEADERS.sort)?.toLowerCase()
  if (sort !== undefined) {
    if (!SORTS.has(sort)) throw badHeader(ROUTING_HEADERS.sort, sort, 'price, latency or throughput')
    controls.sort = sort as ProviderSort
  }
  const fallbacks = read(ROUTING_HEADERS.allowFallbacks)?.toLowerCase()
  if (fallbacks !== undefined) {
    if (fallbacks !== 'true' && fallbacks !== 'false')
      throw badHeader(ROUTING_HEADERS.allowFallbacks, fallbacks, 'true or false')
    controls.allowFallbacks = fallbacks === 'true'
  }
  for (const field of ['maxPricePrompt', 'maxPriceCompletion'] as const) {
    const text = read(ROUTING_HEADERS[field])
    if (text === undefined) continue
    if (!NEURON.test(text)) throw badHeader(ROUTING_HEADERS[field], text, 'a price in neuron per token (digits)')
    const ceiling = BigInt(text)
    const own = controls[field]
    controls[field] = own !== undefined && own < ceiling ? own : ceiling
  }
  const asksNothing =
    controls.allowFallbacks &&
    controls.provider === undefined &&
    controls.sort === undefined &&
    controls.maxPricePrompt === undefined &&
    controls.maxPriceCompletion === undefined
  return asksNothing ? undefined : controls
}
