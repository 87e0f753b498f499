import { bytesToHex, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { callDstackAgent, DstackAgentError, resolveDstackEndpoint } from './dstack-agent.ts'
import { encodeReportData, type ReportDataLayout, reportDataFieldBytes } from './report-data.ts'
import { accountTeeSigner, checkAttestationNonce, type DstackAttestationReport, type TeeSigner } from './tee-signer.ts'

/** dstack `GetKey` answer (`sdk/curl/api.md`): the derived secp256k1 key and its KMS signature chain, hex. */
type GetKeyResponse = { key: string; signature_chain?: string[] }
/** dstack `GetQuote` answer: quote hex, event log JSON string, report_data hex, vm_config JSON string. */
type GetQuoteResponse = { quote: string; event_log: string; report_data?: string; vm_config?: string }
/** dstack `Info` answer; tcb_info is a JSON string (mrtd, rtmr0-3, app_compose, event_log). */
type InfoResponse = { tcb_info?: string }

/**
 * The signer of a provider node running in a dstack CVM (Intel TDX). The key comes from the guest agent's
 * `GetKey`, deterministic per app and path, so it survives restarts; 0G brokers derive theirs the same way
 * (`GetKey("/", "")`, then `HexToECDSA`; 0g-serving-broker `api/common/tee/tee.go`, `phala.go`). Quotes come from
 * `GetQuote`: without a nonce the report_data is 0G's legacy ASCII address (fetched once and reused, as 0G does);
 * with a verifier's nonce it is signer ‖ nonce, fresh per call.
 */
export async function createDstackSigner(
  params: { endpoint?: string; keyPath?: string; timeoutMs?: number } = {},
): Promise<TeeSigner> {
  const endpoint = resolveDstackEndpoint(params.endpoint)
  const call = <T>(method: string, body: unknown) =>
    callDstackAgent<T>(endpoint, method, body, { timeoutMs: params.timeoutMs })

  const derived = await call<GetKeyResponse>('GetKey', { path: params.keyPath ?? '/', purpose: '' })
  const keyHex = typeof derived.key === 'string' ? derived.key.replace(/^0x/, '') : ''
  if (!/^[0-9a-fA-F]{64}$/.test(keyHex)) {
    throw new DstackAgentError({ endpoint, method: 'GetKey', message: 'the key is not 32 bytes of hex' })
  }
  const account = privateKeyToAccount(`0x${keyHex}`)

  let tcbInfo: Promise<string | undefined> | undefined
  // tcb_info only feeds the SDK's compose-hash check; a report without it is still a valid quote.
  const getTcbInfo = () => {
    tcbInfo ??= call<InfoResponse>('Info', {}).then(
      (info) => (typeof info.tcb_info === 'string' ? info.tcb_info : undefined),
      () => {
        tcbInfo = undefined // asked again next time
        return undefined
      },
    )
    return tcbInfo
  }

  const quote = async (layout: ReportDataLayout, nonce?: Hex): Promise<DstackAttestationReport> => {
    const reportData = encodeReportData(layout, account.address, nonce)
    const [answer, tcb] = await Promise.all([
      call<GetQuoteResponse>('GetQuote', { report_data: bytesToHex(reportData).slice(2) }),
      getTcbInfo(),
    ])
    if (typeof answer.quote !== 'string' || !/^(0x)?[0-9a-fA-F]+$/.test(answer.quote)) {
      throw new DstackAgentError({ endpoint, method: 'GetQuote', message: 'the answer has no hex quote' })
    }
    if (answer.report_data !== undefined && !sameBytes(fieldBytes(answer.report_data), reportData)) {
      throw new DstackAgentError({
        endpoint,
        method: 'GetQuote',
        message: `the quote's report_data ${answer.report_data} is not the one requested (${bytesToHex(reportData)})`,
      })
    }
    return {
      tee: 'intel-tdx',
      quote: answer.quote.replace(/^0x/, ''),
      event_log: typeof answer.event_log === 'string' ? answer.event_log : JSON.stringify(answer.event_log ?? []),
      report_data: Buffer.from(reportData).toString('base64'),
      ...(answer.vm_config === undefined ? {} : { vm_config: answer.vm_config }),
      ...(tcb === undefined ? {} : { tcb_info: tcb }),
      signing_address: account.address,
      signing_algo: 'ecdsa',
      report_data_layout: layout,
      ...(nonce === undefined ? {} : { nonce }),
    }
  }

  let legacy: Promise<DstackAttestationReport> | undefined
  return accountTeeSigner({
    kind: 'dstack',
    account,
    privateKey: `0x${keyHex}`,
    attestation: async (nonce) => {
      checkAttestationNonce(nonce)
      if (nonce !== undefined) return quote('signer-nonce', nonce)
      legacy ??= quote('legacy-ascii-address').catch((e) => {
        legacy = undefined
        throw e
      })
      return legacy
    },
  })
}

function fieldBytes(field: unknown): Uint8Array | undefined {
  try {
    return typeof field === 'string' ? reportDataFieldBytes(field) : undefined
  } catch {
    return undefined
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i])
}
