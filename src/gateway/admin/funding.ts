import type { Hono } from 'hono'
import { isAddress } from 'viem'
import type { FundingStatus } from '../../billing/escrow.ts'
import type { GatewayCore } from '../forward.ts'
import { GatewayError } from '../http/openai-error.ts'

/** One provider's funding as JSON: amounts in neuron, as strings (bigint has no JSON form). */
export type FundingJson = ReturnType<typeof fundingJson>

function fundingJson(s: FundingStatus, core: GatewayCore) {
  const str = (v: bigint | null) => (v === null ? null : v.toString())
  return {
    provider: s.provider,
    state: s.state,
    reason: s.reason,
    balance: str(s.balance),
    pendingRefund: str(s.pendingRefund),
    unsettled: s.unsettled.toString(),
    unsettledSource: s.unsettledSource,
    expected: s.expected.toString(),
    reserve: s.reserve.toString(),
    target: str(s.target),
    credit: s.credit.toString(),
    verified: s.verified.toString(),
    movedIn: s.movedIn.toString(),
    checked: s.checked,
    disputed: s.disputed,
    checkedAt: s.checkedAt === null ? null : new Date(s.checkedAt).toISOString(),
    // What the router makes of it: left out while flagged, and its circuit breaker.
    routed: !core.router.isFlagged(s.provider),
    breaker: core.router.health(s.provider),
  }
}

/**
 * GET /admin/funding: the escrow policy's view of every provider sub-account it funds (state, target, verified
 * credit, disputes); `?refresh=true` rebalances them first. The policy state lives in this process only.
 */
export function fundingRoutes(admin: Hono, core: GatewayCore): void {
  admin.get('/funding', async (c) => {
    const escrow = core.escrow
    if (!escrow) return c.json({ autoFund: false, wallet: core.tokens.address, providers: [] })
    const refresh = c.req.query('refresh')
    if (refresh === 'true' || refresh === '1') await escrow.rebalanceAll()
    return c.json({
      autoFund: true,
      wallet: escrow.user,
      providers: escrow.status().map((s) => fundingJson(s, core)),
    })
  })

  // The way back for a provider the policy stopped: its past disputes no longer count, also after a restart.
  admin.post('/funding/:provider/resume', (c) => {
    const provider = c.req.param('provider')
    if (!isAddress(provider, { strict: false })) {
      throw new GatewayError(400, `${provider} is not an address.`, {
        type: 'invalid_request_error',
        param: 'provider',
      })
    }
    const escrow = core.escrow
    if (!escrow?.resume(provider)) {
      throw new GatewayError(409, `The funding policy has not stopped ${provider}.`, {
        type: 'invalid_request_error',
        code: 'provider_not_stopped',
      })
    }
    core.ledger.markResumed(provider, Date.now())
    const status = escrow.status().find((s) => s.provider.toLowerCase() === provider.toLowerCase())
    return c.json(status ? fundingJson(status, core) : { provider })
  })
}
