import type { Report } from '@phala/dcap-qvl'
import type { Rtmrs } from './rtmr-replay.ts'

/** The TD measurements L3 compares against, as lowercase hex. They come from the quote body, never from JSON. */
export type QuoteMeasurements = {
  mrTd: string
  rtmrs: Rtmrs
  /** 48 bytes; all zero on dstack versions that do not bind the compose hash here. */
  mrConfigId: string
}

/** Reads the measurements of a TDX report as parsed by `@phala/dcap-qvl` (`verify(...).report` or `Quote.parse`). */
export function quoteMeasurements(report: Report): QuoteMeasurements {
  // asTd10 also answers for TD 1.5 reports (their TD 1.0 base).
  const td = report.asTd10()
  if (!td) throw new TypeError(`not a TDX report (type ${report.type})`)
  const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')
  return {
    mrTd: hex(td.mrTd),
    rtmrs: [hex(td.rtMr0), hex(td.rtMr1), hex(td.rtMr2), hex(td.rtMr3)],
    mrConfigId: hex(td.mrConfigId),
  }
}
