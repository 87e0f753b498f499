import { BaseError, formatEther, HttpRequestError, InsufficientFundsError, TimeoutError } from 'viem'
import { isLedgerShortage } from '../billing/funding-policy.ts'
import { GatewayError } from './http/openai-error.ts'

/**
 * A failure of the gateway's own side before a call reached the provider (opening its sub-account, building its
 * session token) that no other provider would avoid: an empty ledger (402) or an unreachable chain RPC (503). Such a
 * failure is not the provider's: it must not count against its circuit breaker nor send the call to the next one.
 * Undefined for anything else (a provider's own refusal, a connection to the provider failing).
 */
export function gatewaySideFailure(err: unknown): GatewayError | undefined {
  if (isLedgerShortage(err)) {
    const [available, required] = err.args
    const figures =
      typeof available === 'bigint' && typeof required === 'bigint'
        ? ` (${formatEther(available)} 0G available, ${formatEther(required)} 0G needed)`
        : ''
    const message =
      err.errorName === 'LedgerNotExists'
        ? "The gateway's wallet has no ledger (main account) on 0G, so it cannot fund a provider's escrow. Create one: zg-gateway account create --amount 3"
        : `The gateway's ledger is empty${figures}: it cannot fund a provider's escrow. Fund it: zg-gateway account deposit --amount <0G>`
    return new GatewayError(402, message, {
      type: 'insufficient_quota',
      code: 'insufficient_ledger_balance',
      noRetry: true,
    })
  }
  if (!(err instanceof BaseError)) return undefined
  if (err.walk((e) => e instanceof InsufficientFundsError)) {
    return new GatewayError(
      402,
      "The gateway's wallet has no 0G left to pay for gas, so it cannot fund a provider's escrow. Send 0G to the wallet.",
      { type: 'insufficient_quota', code: 'insufficient_wallet_balance', noRetry: true },
    )
  }
  if (err.walk((e) => e instanceof HttpRequestError || e instanceof TimeoutError)) {
    return new GatewayError(
      503,
      `The gateway cannot reach the 0G chain (${err.shortMessage}), which it needs before its first call to a provider. Try again shortly.`,
      { type: 'api_error', code: 'chain_unavailable', headers: { 'retry-after': '5' } },
    )
  }
  return undefined
}
