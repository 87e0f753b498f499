import { readFileSync } from 'node:fs'
import { bytesToHex, type Hex } from 'viem'
import { parseCollateral } from '../attestation/dcap/collateral.ts'
import { QuoteVerifier } from '../attestation/dcap/quote-verifier.ts'
import { DEFAULT_TCB_POLICY, evaluateTcb } from '../attestation/dcap/tcb-policy.ts'
import { QuoteVerificationError } from '../attestation/dcap/verify-quote.ts'
import { decodeReportData, verifyReportDataBinding } from '../attestation/report-data.ts'
import { type Command, type CommandGroup, requireString, UsageError, type Values } from './command.ts'
import { printJson, table } from './output.ts'
import { verifyReceiptCommand } from './verify-receipt.ts'

/** A quote file as raw bytes, or as hex text (what /v1/quote and vllm-proxy serve). */
export function readQuoteFile(path: string): Uint8Array {
  const raw = readFileSync(path)
  const text = raw.toString('latin1').trim()
  if (/^(0x)?[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) {
    return new Uint8Array(Buffer.from(text.replace(/^0x/, ''), 'hex'))
  }
  return new Uint8Array(raw)
}

/** --now as ISO 8601 or unix seconds; the wall clock when absent. */
export function nowOf(values: Values): Date {
  const text = values.now
  if (typeof text !== 'string') return new Date()
  const date = /^\d+$/.test(text) ? new Date(Number(text) * 1000) : new Date(text)
  if (Number.isNaN(date.getTime())) throw new UsageError(`--now is not a time: ${text}`)
  return date
}

const optionalHex = (values: Values, name: string): Hex | undefined => {
  const v = values[name]
  if (typeof v !== 'string') return undefined
  if (!/^(0x)?[0-9a-fA-F]+$/.test(v)) throw new UsageError(`--${name} is not hex: ${v}`)
  return (v.startsWith('0x') ? v : `0x${v}`) as Hex
}

const verifyQuoteCommand: Command = {
  summary: 'Verify an Intel DCAP quote (TDX/SGX) offline against Intel collateral, and show what it binds',
  args: '<quote file (binary or hex)>',
  options: {
    collateral: { type: 'string', description: 'collateral JSON (dcap-qvl QuoteCollateralV3 shape), required' },
    now: { type: 'string', description: 'verification time, ISO 8601 or unix seconds (default: now)' },
    'allow-advisories': { type: 'string', description: 'Intel advisories to accept, comma-separated (INTEL-SA-…)' },
    'skip-crl-dates': { type: 'boolean', description: "show dcap-qvl's verdict without our CRL date/signature check" },
    signer: { type: 'string', description: 'check report_data binds this signer (address or 32-byte key)' },
    nonce: { type: 'string', description: 'with --signer: the 32-byte nonce the quote should bind' },
    'tls-fingerprint': { type: 'string', description: 'with --signer: TLS fingerprint (vllm-proxy v2 layout)' },
    'enc-pub': { type: 'string', description: 'with --signer: expected enc_pub (0G E2EE layout)' },
  },
  async run(values, positionals) {
    const file = positionals[0]
    if (!file) throw new UsageError('name the quote file to verify')
    const quote = readQuoteFile(file)
    const collateral = parseCollateral(JSON.parse(readFileSync(requireString(values, 'collateral'), 'utf8')))
    const now = nowOf(values)
    const policy = {
      ...DEFAULT_TCB_POLICY,
      allowedAdvisories:
        typeof values['allow-advisories'] === 'string'
          ? values['allow-advisories'].split(',').map((a) => a.trim())
          : [],
    }
    const verifier = new QuoteVerifier()
    try {
      const result = await verifier.verify(quote, collateral, now, { checkCrlDates: !values['skip-crl-dates'] })
      const verdict = evaluateTcb(result, policy)
      const signer = optionalHex(values, 'signer')
      let binding: { layout: string; fresh: boolean } | { error: string } | undefined
      if (signer) {
        try {
          binding = verifyReportDataBinding(result.reportData, {
            signer,
            nonce: optionalHex(values, 'nonce'),
            tlsKeyFingerprint: optionalHex(values, 'tls-fingerprint'),
            encPub: optionalHex(values, 'enc-pub'),
          })
        } catch (err) {
          binding = { error: (err as Error).message }
        }
      }
      let layout: string | undefined
      try {
        const decoded = decodeReportData(result.reportData)
        layout = `${decoded.layout}: signer ${decoded.signer}${decoded.nonce ? `, nonce ${decoded.nonce}` : ''}`
      } catch {
        layout = undefined
      }
      const ok = verdict.ok && (binding === undefined || !('error' in binding))
      if (values.json) {
        printJson({ ok, ...result, reportData: bytesToHex(result.reportData), policy: verdict, binding, layout })
      } else {
        const rows: [string, string][] = [
          ['quote', `verified (v${result.quoteVersion}, ${result.reportType})`],
          ['tcb status', result.status],
          ['advisories', result.advisoryIds.join(', ') || '-'],
          ['policy', `${verdict.ok ? 'accepted' : 'rejected'}: ${verdict.reason}`],
          ...verdict.warnings.map((w): [string, string] => ['warning', w]),
          ['crl dates', result.crlDatesChecked ? 'checked' : 'NOT checked (--skip-crl-dates)'],
          ['report_data', bytesToHex(result.reportData)],
          ['layout', layout ?? 'not a self-describing layout'],
        ]
        if (binding)
          rows.push([
            'binding',
            'error' in binding ? `FAILED: ${binding.error}` : `${binding.layout}, fresh: ${binding.fresh}`,
          ])
        if (result.td) {
          rows.push(['mr_td', result.td.mrTd], ['mr_config_id', result.td.mrConfigId])
          result.td.rtmrs.forEach((r, i) => {
            rows.push([`rtmr${i}`, r])
          })
          rows.push(['td_attributes', `${result.td.tdAttributes.raw} (debug: ${result.td.tdAttributes.debug})`])
        }
        if (result.sgx) {
          rows.push(
            ['mr_enclave', result.sgx.mrEnclave],
            ['mr_signer', result.sgx.mrSigner],
            ['debug', String(result.sgx.debug)],
          )
        }
        process.stdout.write(`${table(rows)}\n`)
      }
      return ok ? 0 : 1
    } catch (err) {
      if (!(err instanceof QuoteVerificationError)) throw err
      if (values.json) printJson({ ok: false, error: { stage: err.stage, message: err.message } })
      else process.stdout.write(`quote rejected (${err.stage}): ${err.message}\n`)
      return 1
    } finally {
      await verifier.close()
    }
  },
}

/** `zg-gateway attest …`: offline checks of TEE evidence. */
export const attestGroup: CommandGroup = {
  summary: "Verify TEE evidence and the gateway's signed receipts offline",
  commands: { 'verify-quote': verifyQuoteCommand, 'verify-receipt': verifyReceiptCommand },
}
