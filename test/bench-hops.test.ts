import { describe, expect, it } from 'vitest'
import type { HopMark } from '../bench/hop-trace.mjs'
import { gatewaySteps, type Hop, hopBreakdown } from '../bench/hops.ts'

const GW = 8000
const NODE = 9000
const BACKEND = 9100
const RPC = 8545

const gateway: Hop = { name: 'gateway', role: 'gateway', port: GW, upstream: NODE }
const node: Hop = { name: 'provider node', role: 'stack', port: NODE, upstream: BACKEND }

/** The marks of one call client → gateway → node → backend starting at `t0` (ns), each step `step` µs long. */
function call(t0: number, step: number, marks: Record<string, HopMark[]>, opts: { dropGatewayWrite?: boolean } = {}) {
  let t = t0
  const at = (role: string, what: HopMark[1], port: number) => {
    marks[role]!.push([t, what, port])
    t += step * 1000
  }
  at('client', 'create', GW)
  at('client', 'sent', GW)
  at('gateway', 'receive', GW)
  // The gateway's own chain RPC in the middle of a call: another upstream, not part of the path.
  marks.gateway!.push([t - 10, 'create', RPC])
  at('gateway', 'create', NODE)
  at('gateway', 'sent', NODE)
  at('stack', 'receive', NODE)
  at('stack', 'create', BACKEND)
  at('stack', 'sent', BACKEND)
  at('stack', 'receive', BACKEND)
  at('stack', 'write', BACKEND)
  at('stack', 'headers', BACKEND)
  at('stack', 'write', NODE)
  at('gateway', 'headers', NODE)
  if (!opts.dropGatewayWrite) at('gateway', 'write', GW)
  at('client', 'headers', GW)
  return t
}

describe('hopBreakdown', () => {
  it("lines up each call's marks across processes and takes the median of each hop's steps", () => {
    const marks: Record<string, HopMark[]> = { client: [], gateway: [], stack: [] }
    let t = 1_000_000
    for (const step of [10, 30, 20]) t = call(t, step, marks) + 5_000_000
    // Each list is in its own process's order; the lines are merged by time.
    const report = hopBreakdown(marks, 'client', GW, [gateway, node])
    expect(report.calls).toBe(3)
    // 14 steps of 20 µs, the median call.
    expect(report.totalUs).toBe(280)
    expect(report.hops.gateway).toEqual({ receive: 20, handle: 20, send: 20, upstream: 160, relay: 20, deliver: 20 })
    // Behind the node: its backend call (sent → headers) spans the backend's receive and write.
    expect(report.hops['provider node']).toEqual({
      receive: 20,
      handle: 20,
      send: 20,
      upstream: 60,
      relay: 20,
      deliver: 20,
    })
  })

  it('leaves out a call with a mark missing, and marks of other targets', () => {
    const marks: Record<string, HopMark[]> = { client: [], gateway: [], stack: [] }
    let t = call(1_000_000, 10, marks, { dropGatewayWrite: true }) + 1_000_000
    t = call(t, 40, marks) + 1_000_000
    // A direct call to the node between them: its marks do not belong to the gateway's calls.
    marks.client!.push([t, 'create', NODE], [t + 1000, 'headers', NODE])
    const report = hopBreakdown(marks, 'client', GW, [gateway, node])
    expect(report.calls).toBe(1)
    expect(report.hops.gateway!.handle).toBe(40)
    expect(hopBreakdown(marks, 'client', 1234, [gateway]).calls).toBe(0)
  })
})

describe('gatewaySteps', () => {
  /** The gateway's own marks of one stream, each step `us` µs after the one before, from `t0` (ns). */
  function gatewayCall(t0: number, us: number, marks: HopMark[], skip?: HopMark[1]) {
    let t = t0
    const seq: Array<[HopMark[1], number]> = [
      ['receive', GW],
      ['app', 0],
      ['auth', 0],
      ['body', 0],
      ['validated', 0],
      ['routed', 0],
      ['create', NODE],
      ['sent', NODE],
      ['headers', NODE],
      ['relay', 0],
      ['write', GW],
    ]
    for (const [what, port] of seq) {
      if (what !== skip) marks.push([t, what, port])
      // The chain's RPC, called in the middle of a call: not the provider.
      if (what === 'auth') marks.push([t + 1, 'create', RPC], [t + 2, 'headers', RPC])
      t += us * 1000
    }
    return t
  }

  it("times the gateway's own steps of each call and takes their medians, leaving out calls with one missing", () => {
    const marks: HopMark[] = []
    let t = 1_000_000
    for (const us of [10, 50, 30]) t = gatewayCall(t, us, marks) + 1_000_000
    gatewayCall(t, 99, marks, 'validated')
    const report = gatewaySteps(marks, gateway)
    expect(report.calls).toBe(3)
    // Each step 30 µs in the median call; routed → create is one step, headers → relay one step after sent.
    expect(report.steps).toEqual({
      'receive→app': 30,
      'app→auth': 30,
      'auth→body': 30,
      'body→validated': 30,
      'validated→routed': 30,
      'routed→create': 30,
      'headers→relay': 30,
      'relay→write': 30,
    })
  })
})
