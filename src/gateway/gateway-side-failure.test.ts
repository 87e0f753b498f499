import { HttpRequestError, parseEther } from 'viem'
import { describe, expect, it } from 'vitest'
import { ZgContractError } from '../chain/errors.ts'
import { gatewaySideFailure } from './gateway-side-failure.ts'

describe("gatewaySideFailure: the wallet's own trouble, told apart from the provider's", () => {
  it('an empty ledger is a 402 insufficient_ledger_balance with the figures and the command', () => {
    const err = new ZgContractError({
      errorName: 'InsufficientAvailableBalance',
      args: [parseEther('0.5'), parseEther('2')],
      functionName: 'transferFund',
    })
    const failure = gatewaySideFailure(err)!
    expect(failure.status).toBe(402)
    expect(failure.type).toBe('insufficient_quota')
    expect(failure.code).toBe('insufficient_ledger_balance')
    expect(failure.message).toMatch(/0\.5 0G available, 2 0G needed.*zg-gateway account deposit/)
  })

  it('no ledger at all says how to create one', () => {
    const failure = gatewaySideFailure(new ZgContractError({ errorName: 'LedgerNotExists', args: [] }))!
    expect(failure.status).toBe(402)
    expect(failure.message).toMatch(/zg-gateway account create/)
  })

  it('an unreachable RPC is a 503 chain_unavailable', () => {
    const err = new HttpRequestError({ url: 'http://127.0.0.1:1', cause: new Error('connect ECONNREFUSED') })
    const failure = gatewaySideFailure(err)!
    expect(failure.status).toBe(503)
    expect(failure.code).toBe('chain_unavailable')
    expect(failure.headers['retry-after']).toBe('5')
  })

  it("leaves a provider's own trouble alone (a removed service, a connection to the provider)", () => {
    expect(gatewaySideFailure(new ZgContractError({ errorName: 'ServiceNotExist', args: ['0x1'] }))).toBeUndefined()
    expect(gatewaySideFailure(new Error('other side closed'))).toBeUndefined()
  })
})
