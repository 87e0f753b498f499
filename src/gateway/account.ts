import type { Hex } from 'viem'
import { sha256Hex } from '../attestation/response-signature.ts'
import { billedUnits, feeOf, type Usage } from '../billing/pricing.ts'
import type { CallRecord } from '../billing/usage-ledger.ts'
import type { CatalogEntry } from '../providers/catalog.ts'
import type { ForwardRequest, GatewayCore } from './forward.ts'
import { signedReceipt } from './receipts.ts'

export type Delivered = {
  status: number
  /** The sha256 hex of the provider's bytes as received, asked for off the request path. */
  responseSha256: () => string
  usage: () => Usage | undefined
  resKey: string | null
  /** ZG-Res-Signature, when the provider sent its signature along (a header, or a stream's trailer: zg-gateway nodes). */
  signature: Hex | null
  latencyMs: number
  /** Time to the answer's headers, and for a stream the bytes after them and how long they took. */
  firstByteMs: number
  transfer?: { bytes: number; ms: number }
  /** Bytes the client received. */
  deliveredBytes: number
  /**
   * Why a stream stopped before the provider finished it, when nothing signed can follow: the client went away, or
   * the connection to the provider failed. The record is then final at once.
   */
  cutShort?: { by: 'client' | 'connection'; reason: string }
}

/** What a cut-short stream's record says: what reached the client, what the provider reported, why no signature. */
function cutShortDetail(d: Delivered, fee: bigint | undefined): string {
  const who =
    d.cutShort!.by === 'client'
      ? `the client closed the stream after ${d.deliveredBytes} bytes`
      : `the connection to the provider failed after ${d.deliveredBytes} bytes (${d.cutShort!.reason})`
  const billed =
    fee === undefined
      ? 'the provider reported no usage before that, so no fee is recorded'
      : `the provider reported its usage first: ${fee} neuron`
  return `${who}; ${billed}; a response cut short carries no provider signature to check`
}

/**
 * Records the call now, resolving once the record is committed (a group commit the calls ending in the same turn
 * share): the caller sends its last bytes after that, so an answer a client got in full is never missing from the
 * ledger after a crash. The delivery is verified off the request path (see OffPathQueue).
 */
export function settleAfter(core: GatewayCore, req: ForwardRequest, entry: CatalogEntry, d: Delivered): Promise<void> {
  let recorded: Promise<void>
  let call: CallRecord
  let cutShort: string | null
  try {
    const usage = d.usage()
    const fee = usage ? feeOf(usage, entry).fee : 0n
    // The key's spend is written beside the record: the answer's last bytes wait for both.
    const spent = req.admission
      ?.settle(fee, usage)
      .catch((err: Error) => core.log(`gateway: writing the spend of ${req.requestId} failed: ${err.message}`))
    const units = usage ? billedUnits(usage) : [0n, 0n]
    cutShort = d.cutShort ? cutShortDetail(d, usage ? fee : undefined) : null
    call = {
      requestId: req.requestId,
      createdAt: Date.now(),
      apiKeyId: req.apiKeyId,
      provider: entry.provider,
      model: req.model,
      endpoint: req.endpoint,
      stream: req.stream,
      status: d.status,
      inputUnits: units[0]!,
      outputUnits: units[1]!,
      fee,
      resKey: d.resKey,
      latencyMs: Math.round(d.latencyMs),
      deliveredBytes: d.deliveredBytes,
      // A stream cut short is final at once; any other answer, complete or ended by the provider, is checked.
      verification: cutShort ? 'unverifiable' : 'pending',
      verificationLevel: null,
      verificationDetail: cutShort,
    }
    recorded = spent
      ? Promise.all([core.ledger.recordDurably(call), spent]).then(() => undefined)
      : core.ledger.recordDurably(call)
  } catch (err) {
    core.log(`gateway: recording ${req.requestId} failed: ${(err as Error).message}`)
    return Promise.resolve()
  }
  observeRecord(core, req, call, recorded)
  core.offPath.add(async () => {
    try {
      // The router's rankings are redone with this latency: off the way of this call and of the next.
      if (d.status === 200) core.router.reportSuccess(entry.provider, d.firstByteMs, d.transfer)
      if (cutShort) {
        core.observability?.verified(req.requestId, entry.provider, 'unverifiable', null)
        core.onReceipt?.(req.requestId, { status: 'unverifiable', level: null, detail: cutShort })
        return
      }
      const receipt = await core.verifier.verify({
        url: entry.url,
        model: req.model,
        verifiability: entry.verifiability,
        teeSignerAddress: entry.teeSignerAddress,
        teeSignerAcknowledged: entry.teeSignerAcknowledged,
        resKey: d.resKey,
        signature: d.signature,
        requestBody: { sha256: req.body instanceof Uint8Array ? sha256Hex(req.body) : (req.bodySha256?.() ?? '') },
        responseBody: { sha256: d.responseSha256() },
      })
      const signed = core.receiptSigner && (await signedReceipt(core.receiptSigner, call, entry, receipt, core))
      core.ledger.setVerification(
        req.requestId,
        receipt.status,
        signed?.level ?? receipt.level,
        receipt.detail,
        signed?.text ?? null,
      )
      core.escrow?.onReceipt(entry.provider, receipt.status, call.fee)
      core.observability?.verified(req.requestId, entry.provider, receipt.status, signed?.level ?? receipt.level)
      core.onReceipt?.(req.requestId, receipt)
    } catch (err) {
      core.log(`gateway: verifying ${req.requestId} failed: ${(err as Error).message}`)
    }
  })
  return recorded
}

/** Endpoints billed in tokens (the rest: images, seconds of audio). */
const TOKEN_ENDPOINTS = new Set(['chat/completions', 'completions', 'embeddings'])

/** What the record says, for the request's log line and metrics; and how long its durable commit takes. */
function observeRecord(core: GatewayCore, req: ForwardRequest, call: CallRecord, recorded: Promise<void>): void {
  const observed = req.observation
  if (observed) {
    observed.fee = call.fee
    observed.inputUnits = call.inputUnits
    observed.outputUnits = call.outputUnits
    observed.tokens = TOKEN_ENDPOINTS.has(call.endpoint)
    observed.verification = call.verification
  }
  const observability = core.observability
  if (!observability) return
  // A side branch, not in the answer's way: the lag is what a crash right after the call could lose.
  const ended = performance.now()
  void recorded.then(() => observability.ledgerCommitted(performance.now() - ended))
}
