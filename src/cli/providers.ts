import { checkProviderAttestation } from '../attestation/provider-attestation.ts'
import { format0G } from '../chain/units.ts'
import { ProviderCatalog } from '../providers/catalog.ts'
import { type Command, type CommandGroup, requireAddress, UsageError, type Values } from './command.ts'
import { clientsFrom, networkOptions } from './network-options.ts'
import { printJson, table } from './output.ts'

async function loadCatalog(values: Values) {
  const clients = await clientsFrom(values, false)
  const catalog = new ProviderCatalog({
    clients,
    allowPrivateUrls: Boolean(values['allow-private-urls']) || clients.network.name === 'devnet',
    log: () => {},
  })
  await catalog.refresh()
  return catalog
}

const list: Command = {
  summary: 'List the acknowledged inference services on the network, with models, prices and health',
  options: {
    ...networkOptions,
    'allow-private-urls': { type: 'boolean', description: 'keep providers on private addresses' },
  },
  async run(values) {
    const catalog = await loadCatalog(values)
    const entries = catalog.entries()
    if (values.json) printJson({ providers: entries, excluded: catalog.excluded() })
    else {
      console.log(
        table([
          ['provider', 'type', 'model', 'verifiability', 'input price', 'output price', 'healthy', 'url'],
          ...entries.map((e) => [
            e.provider,
            e.serviceType,
            e.model,
            e.verifiability,
            `${format0G(e.inputPrice)} 0G`,
            `${format0G(e.outputPrice)} 0G`,
            e.healthy ? 'yes' : 'no',
            e.url,
          ]),
        ]),
      )
      for (const x of catalog.excluded()) console.log(`left out ${x.provider}: ${x.reason}`)
    }
    return 0
  },
}

const verify: Command = {
  summary: "Check a provider's attestation: does its TEE report bind the signer acknowledged on-chain, and our nonce",
  options: {
    ...networkOptions,
    provider: { type: 'string', description: 'provider address (required)' },
    'allow-private-urls': { type: 'boolean', description: 'allow a provider on a private address' },
  },
  async run(values) {
    const provider = requireAddress(values, 'provider')
    const catalog = await loadCatalog(values)
    const entry = catalog.byProvider(provider)
    if (!entry)
      throw new UsageError(
        `provider ${provider} is not listed (not registered, not acknowledged, or its URL was refused)`,
      )
    const check = await checkProviderAttestation({ url: entry.url, teeSignerAddress: entry.teeSignerAddress })
    const level =
      check.tee === 'intel-tdx' && check.signerBound
        ? 'L1 (signer bound; quote not verified offline)'
        : 'L1 (on-chain acknowledgement only)'
    if (values.json)
      printJson({ provider, teeSigner: entry.teeSignerAddress, verifiability: entry.verifiability, ...check, level })
    else {
      console.log(
        `provider ${provider}  signer ${entry.teeSignerAddress} (acknowledged on-chain)  verifiability ${entry.verifiability}`,
      )
      console.log(`TEE: ${check.tee}; ${check.detail}`)
      console.log(`verification level: ${level}`)
    }
    return check.tee === 'none' || (check.tee === 'intel-tdx' && !check.signerBound) ? 1 : 0
  },
}

export const providersGroup: CommandGroup = {
  summary: 'Discover and check the providers of a 0G network',
  commands: { list, verify },
}
