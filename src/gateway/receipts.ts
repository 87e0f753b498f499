import { getAddress } from 'viem'
import type { CallRecord } from '../billing/usage-ledger.ts'

/** A recorded call as its receipt (GET /v1/receipts/{id} for its key, GET /admin/receipts/{id} for the admin). */
export function receiptJson(call: CallRecord) {
  return {
    id: call.requestId,
    object: 'receipt',
    created: Math.floor(call.createdAt / 1000),
    provider: getAddress(call.provider),
    model: call.model,
    endpoint: call.endpoint,
    status: call.status,
    usage: { input: call.inputUnits.toString(), output: call.outputUnits.toString() },
    fee: call.fee.toString(),
    delivered_bytes: call.deliveredBytes,
    response_key: call.resKey,
    verification: { status: call.verification, level: call.verificationLevel, detail: call.verificationDetail },
  }
}
