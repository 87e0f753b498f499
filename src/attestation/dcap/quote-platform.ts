import { X509Certificate } from 'node:crypto'
import { utils as dcapUtils, Quote } from '@phala/dcap-qvl'
import { QuoteVerificationError } from './verify-quote.ts'

/** What Intel's collateral is keyed by: the TEE, the platform's FMSPC and the CA that issued its PCK certificate. */
export type QuotePlatform = { tee: 'sgx' | 'tdx'; fmspc: string; ca: 'processor' | 'platform' }

const TEE_TYPE_TDX = 0x81

/**
 * Reads the FMSPC and PCK CA from the PCK certificate chain inside a quote (certification data type 5, what TDX and
 * current SGX quotes carry). The CA comes from the leaf's issuer name: dcap-qvl's `intel.getCa` compares a hex
 * dump with a text name and so always answers "processor".
 */
export function quotePlatform(quote: Uint8Array): QuotePlatform {
  let leaf: Buffer | undefined
  let tee: 'sgx' | 'tdx'
  try {
    const parsed = Quote.parse(quote)
    tee = parsed.header.teeType === TEE_TYPE_TDX ? 'tdx' : 'sgx'
    leaf = dcapUtils.extractCerts(Buffer.from(parsed.rawCertChain()))[0]
  } catch (err) {
    throw new QuoteVerificationError(`Failed to decode quote: ${(err as Error).message}`, 'quote')
  }
  if (!leaf) throw new QuoteVerificationError('the quote carries no PCK certificate', 'quote')
  const fmspc = Buffer.from(dcapUtils.getFmspc(dcapUtils.getIntelExtension(leaf)))
    .toString('hex')
    .toUpperCase()
  const issuer = new X509Certificate(leaf).issuer
  const ca = issuer.includes('Intel SGX PCK Platform CA')
    ? 'platform'
    : issuer.includes('Intel SGX PCK Processor CA')
      ? 'processor'
      : undefined
  if (!ca) throw new QuoteVerificationError(`unknown PCK certificate issuer: ${issuer.replace(/\n/g, ', ')}`, 'quote')
  return { tee, fmspc, ca }
}
