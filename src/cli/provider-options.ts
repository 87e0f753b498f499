import { join } from 'node:path'
import type { Address } from 'viem'
import { createInsecureDevSigner } from '../attestation/dev-signer.ts'
import { createDstackSigner } from '../attestation/dstack-signer.ts'
import type { TeeSigner } from '../attestation/tee-signer.ts'
import type { ZgWalletClients } from '../chain/clients.ts'
import { type Options, UsageError, type Values } from './command.ts'
import { clientsFrom, dataDirOf } from './network-options.ts'

/** The provider commands' wallet and TEE signer: shared by `provider …` and `provider fine-tuning …`. */
export const signerOptions: Options = {
  'insecure-dev-signer': {
    type: 'boolean',
    description: 'sign with a software key kept in the data dir; its attestation says plainly that it is not a TEE',
  },
  dstack: {
    type: 'string',
    description:
      'sign with the key of a dstack (Intel TDX) CVM: the guest agent socket or URL (default /var/run/dstack.sock)',
  },
}

export async function providerClients(values: Values): Promise<ZgWalletClients & { address: Address }> {
  const clients = await clientsFrom(values, true)
  const explicitKey = Boolean(process.env.ZG_PRIVATE_KEY || process.env.ZG_KEY_FILE || values['key-file'])
  if (!clients.walletClient || !explicitKey) {
    throw new UsageError('A provider command needs the provider wallet: set ZG_PRIVATE_KEY or pass --key-file')
  }
  return clients as ZgWalletClients & { address: Address }
}

/** The provider's own state: usage database and dev signer key, per provider address. */
export function providerDir(values: Values, provider: Address): string {
  return join(dataDirOf(values), `provider-${provider.toLowerCase()}`)
}

export async function signerFrom(values: Values, dir: string): Promise<TeeSigner> {
  if (values['insecure-dev-signer'] && values.dstack !== undefined) {
    throw new UsageError('choose one signer: --insecure-dev-signer or --dstack')
  }
  if (values['insecure-dev-signer']) return createInsecureDevSigner({ keyFile: join(dir, 'tee-signer.key') })
  if (values.dstack !== undefined) return createDstackSigner({ endpoint: (values.dstack as string) || undefined })
  throw new UsageError(
    'a provider node needs a TEE signer: --dstack (in a TDX CVM) or --insecure-dev-signer (development)',
  )
}
