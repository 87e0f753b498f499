import { readFileSync } from 'node:fs'
import { type Address, isAddress } from 'viem'
import { verifySignedReceipt } from '../attestation/signed-receipt.ts'
import { type Command, UsageError } from './command.ts'
import { printJson } from './output.ts'

/** `attest verify-receipt <file>`: a receipt from GET /v1/receipts/{id} (or its `signed` part), checked offline. */
export const verifyReceiptCommand: Command = {
  summary:
    "Verify a gateway's signed receipt offline: its signature, and the provider's signature over the two hashes inside",
  args: '<receipt.json>',
  options: {
    gateway: { type: 'string', description: 'the gateway address the receipt must be signed by' },
  },
  async run(values, positionals) {
    const file = positionals[0]
    if (!file) throw new UsageError('usage: zg-gateway attest verify-receipt <receipt.json> [--gateway <address>]')
    const gateway = values.gateway as string | undefined
    if (gateway !== undefined && !isAddress(gateway, { strict: false }))
      throw new UsageError(`--gateway is not an address: ${gateway}`)
    let json: unknown
    try {
      json = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new UsageError(`cannot read ${file} as JSON: ${(err as Error).message}`)
    }
    // Either the whole receipt as served, or the signed part alone.
    const signed = (json as { signed?: unknown }).signed ?? json
    const check = await verifySignedReceipt(signed, { gateway: gateway as Address | undefined })
    if (values.json) printJson(check)
    else if (!check.ok) console.log(`INVALID: ${check.reason}`)
    else {
      const p = check.payload
      console.log(`valid receipt ${p.request_id}, signed by the gateway ${p.gateway}`)
      console.log(`  provider ${p.provider}  model ${p.model}  ${p.endpoint}`)
      console.log(`  status ${p.status}, level ${p.level ?? 'none'}; provider signature ${check.providerSignature}`)
      console.log(`  signer ${p.signer}  request sha256 ${p.request_sha256}  response sha256 ${p.response_sha256}`)
      console.log(`  fee ${p.fee} neuron  usage ${p.usage.input} in / ${p.usage.output} out  block ${p.block_number}`)
      if (p.attestation) console.log(`  attestation record ${p.attestation}`)
    }
    return check.ok ? 0 : 1
  },
}
