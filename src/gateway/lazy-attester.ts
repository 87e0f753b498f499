import type { Address } from 'viem'
import type { SignerAttestations } from '../attestation/signer-attestation.ts'
import type { CatalogEntry } from '../providers/catalog.ts'
import type { SignerAttester } from './verification-policy.ts'

/**
 * The signer attester, loaded on first need: the quote and evidence checkers (dcap-qvl, jose) stay out of the memory
 * of a gateway no key or request has asked for L2 yet. Until then there is no record to know.
 */
export function lazyAttester(load: () => Promise<SignerAttestations>): SignerAttester {
  let loaded: SignerAttestations | undefined
  let loading: Promise<SignerAttestations> | undefined
  const get = () => {
    loading ??= load().then((a) => {
      loaded = a
      return a
    })
    return loading
  }
  return {
    known: (provider: Address, signer: Address) => loaded?.known(provider, signer),
    attest: async (entry: CatalogEntry) => (await get()).attest(entry),
    close: async () => {
      await (loading ?? Promise.resolve(undefined)).then((a) => a?.close()).catch(() => {})
    },
  }
}
