import { describe, expect, it } from 'vitest'
import { DEFAULT_TCB_POLICY, evaluateTcb } from './tcb-policy.ts'
import type { QuoteVerification, TcbStatus } from './verify-quote.ts'

const ZERO48 = `0x${'00'.repeat(48)}` as const
const result = (status: TcbStatus, advisoryIds: string[] = [], debug = false): QuoteVerification => ({
  status,
  advisoryIds,
  quoteVersion: 4,
  reportType: 'td10',
  reportData: new Uint8Array(64),
  td: {
    mrTd: ZERO48,
    rtmrs: [ZERO48, ZERO48, ZERO48, ZERO48],
    mrConfigId: ZERO48,
    mrOwner: ZERO48,
    mrOwnerConfig: ZERO48,
    mrSeam: ZERO48,
    tdAttributes: { raw: debug ? '0x0100001000000000' : '0x0000001000000000', debug, septVeDisable: true },
  },
  sgx: undefined,
  crlDatesChecked: true,
  verifiedAt: '2026-01-01T00:00:00.000Z',
})

/** The 0G LLM node's advisories (expected.json): OutOfDate. */
const LLM_ADVISORIES = ['INTEL-SA-01036', 'INTEL-SA-01079', 'INTEL-SA-01099', 'INTEL-SA-01103', 'INTEL-SA-01111']

describe('evaluateTcb', () => {
  it('accepts UpToDate, warns on SWHardeningNeeded and ConfigurationNeeded', () => {
    expect(evaluateTcb(result('UpToDate'))).toEqual({ ok: true, warnings: [], reason: 'TCB UpToDate' })
    const sw = evaluateTcb(result('SWHardeningNeeded', ['INTEL-SA-00615']))
    expect(sw.ok).toBe(true)
    expect(sw.warnings).toEqual(['TCB SWHardeningNeeded (INTEL-SA-00615)'])
    expect(evaluateTcb(result('ConfigurationNeeded')).ok).toBe(true)
  })

  it('rejects OutOfDate, Revoked and combined statuses unless every advisory is allow-listed', () => {
    const out = evaluateTcb(result('OutOfDate', LLM_ADVISORIES))
    expect(out.ok).toBe(false)
    expect(out.reason).toContain('INTEL-SA-01111')
    expect(evaluateTcb(result('ConfigurationAndSWHardeningNeeded', ['INTEL-SA-00289'])).ok).toBe(false)
    const listed = { ...DEFAULT_TCB_POLICY, allowedAdvisories: LLM_ADVISORIES }
    expect(evaluateTcb(result('OutOfDate', LLM_ADVISORIES), listed)).toMatchObject({ ok: true })
    expect(evaluateTcb(result('OutOfDate', [...LLM_ADVISORIES, 'INTEL-SA-09999']), listed).ok).toBe(false)
    expect(evaluateTcb(result('OutOfDate'), listed).ok).toBe(false) // no advisory named: nothing to allow-list
    expect(evaluateTcb(result('Revoked', LLM_ADVISORIES), listed).ok).toBe(false)
  })

  it('rejects a debug TD unless allowed', () => {
    expect(evaluateTcb(result('UpToDate', [], true))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/debug/),
    })
    expect(evaluateTcb(result('UpToDate', [], true), { ...DEFAULT_TCB_POLICY, allowDebug: true }).ok).toBe(true)
  })
})
