import { randomBytes } from 'node:crypto'
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { accountTeeSigner, checkAttestationNonce, INSECURE_DEV_SIGNER_MESSAGE, type TeeSigner } from './tee-signer.ts'

/** The dev signer's key file exists but does not hold a 32-byte hex secp256k1 key. */
export class DevSignerKeyFileError extends Error {
  override name = 'DevSignerKeyFileError'
  readonly keyFile: string

  constructor(keyFile: string, reason: string, options?: { cause?: unknown }) {
    super(`insecure dev signer key file ${keyFile}: ${reason}`, options)
    this.keyFile = keyFile
  }
}

/**
 * A signer for development without a TEE. The key is a plain file (created with mode 0600 on first use), so the
 * signer address survives restarts and can stay registered as the service's teeSignerAddress on a devnet. Its
 * attestation says that there is no TEE and carries no quote.
 */
export async function createInsecureDevSigner(params: { keyFile: string }): Promise<TeeSigner> {
  const privateKey = await loadOrCreateKey(params.keyFile)
  const account = privateKeyToAccount(privateKey)
  return accountTeeSigner({
    kind: 'insecure-dev',
    account,
    privateKey,
    attestation: async (nonce) => {
      checkAttestationNonce(nonce)
      return {
        tee: 'none',
        insecure: true,
        signing_address: account.address,
        signing_algo: 'ecdsa',
        quote: null,
        message: INSECURE_DEV_SIGNER_MESSAGE,
        ...(nonce === undefined ? {} : { nonce }),
      }
    },
  })
}

async function loadOrCreateKey(keyFile: string): Promise<Hex> {
  let text: string
  try {
    text = await readFile(keyFile, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
    await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 })
    const created = generatePrivateKey()
    // Written whole to a private temp file, then linked into place: link() fails rather than overwrite a key that
    // another process created meanwhile (that one wins and is read back), and no reader sees a half-written file.
    const tmp = `${keyFile}.${randomBytes(8).toString('hex')}.tmp`
    await writeFile(tmp, `${created}\n`, { mode: 0o600, flag: 'wx' })
    try {
      await link(tmp, keyFile)
      return created
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw e2
      text = await readFile(keyFile, 'utf8')
    } finally {
      await unlink(tmp)
    }
  }
  const raw = text.trim()
  const hex = raw.startsWith('0x') ? raw : `0x${raw}`
  // The key itself never goes into the message.
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new DevSignerKeyFileError(keyFile, 'not a 32-byte hex private key')
  return hex as Hex
}
