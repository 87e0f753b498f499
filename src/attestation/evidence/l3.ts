import type { JWTVerifyGetKey } from 'jose'
import type { AttestationReport } from './attestation-report.ts'
import { type DstackEvents, dstackEvents } from './event-log.ts'
import type { MeasurementPolicy } from './measurement-policy.ts'
import { type NrasCheck, verifyNrasEat } from './nras.ts'
import type { QuoteMeasurements } from './quote-measurements.ts'
import { type RtmrReplayResult, replayRtmrs } from './rtmr-replay.ts'
import { type GpuLocalCheck, verifyNvidiaPayloadLocally } from './spdm.ts'
import { type ComposeCheck, checkCompose, checkMeasurements, type MeasurementCheck } from './workload.ts'

export type L3Result = {
  ok: boolean
  rtmrReplay: RtmrReplayResult
  /** Named IMR3 events; only trustworthy when rtmrReplay.ok. */
  events: DstackEvents
  compose: ComposeCheck
  measurements: MeasurementCheck
  gpu: { local?: GpuLocalCheck; nras?: NrasCheck }
  reasons: string[]
}

/**
 * Level L3 (tee-verification.md §6.1): the event log replays to the quote's RTMRs, the compose file is the measured
 * one, measurements are allowed by `policy`, and every GPU proves itself for `nonce` (local SPDM check whenever
 * evidence is served, plus NRAS when an EAT is given). `quote` must come from the DCAP-verified quote bytes.
 */
export async function evaluateEvidence(params: {
  report: AttestationReport
  quote: QuoteMeasurements
  nonce: string
  policy: MeasurementPolicy
  now: Date
  /** NRAS answer for `report.nvidiaPayload`, with the keys to check it (JwksSource.keyGetter). */
  nras?: { eat: unknown; keys: JWTVerifyGetKey }
  /** Default true: a report without GPU evidence fails (a CPU-only broker passes false). */
  requireGpu?: boolean
}): Promise<L3Result> {
  const { report, quote } = params
  const rtmrReplay = replayRtmrs(report.eventLog, quote.rtmrs)
  const reasons = [...rtmrReplay.reasons]
  let events: DstackEvents = {}
  try {
    events = dstackEvents(report.eventLog)
  } catch (err) {
    reasons.push((err as Error).message)
  }
  const compose = checkCompose({ events, appCompose: report.appCompose, mrConfigId: quote.mrConfigId })
  const measurements = checkMeasurements(quote, events, params.policy)
  reasons.push(...compose.reasons, ...measurements.reasons)

  const gpu: L3Result['gpu'] = {}
  const payload = report.nvidiaPayload
  if (payload) {
    gpu.local = verifyNvidiaPayloadLocally(payload, params.nonce, params.now)
    reasons.push(...gpu.local.reasons.map((r) => `local GPU check: ${r}`))
  }
  if (params.nras) {
    gpu.nras = await verifyNrasEat({
      eat: params.nras.eat,
      keys: params.nras.keys,
      expectedNonce: params.nonce,
      now: params.now,
      expectedGpus: payload?.evidenceList.length,
    })
    reasons.push(...gpu.nras.reasons.map((r) => `NRAS: ${r}`))
  }
  if (!payload && (params.requireGpu ?? true)) reasons.push('no GPU evidence in the report')
  return { ok: reasons.length === 0, rtmrReplay, events, compose, measurements, gpu, reasons }
}
