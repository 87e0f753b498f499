import { readFile } from 'node:fs/promises'
import type { Hex, PrivateKeyAccount } from 'viem'
import { privateKeyAccount } from './secp256k1.ts'

/**
 * Loads the wallet from ZG_PRIVATE_KEY or a key file. The key itself never appears in an error message: a bad key
 * is reported by where it came from, not by its value.
 */
export async function loadWallet(
  params: { keyFile?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<PrivateKeyAccount | undefined> {
  const env = params.env ?? process.env
  let raw: string | undefined
  let source: string
  if (params.keyFile) {
    raw = (await readFile(params.keyFile, 'utf8')).trim()
    source = `key file ${params.keyFile}`
  } else if (env.ZG_PRIVATE_KEY) {
    raw = env.ZG_PRIVATE_KEY.trim()
    source = 'ZG_PRIVATE_KEY'
  } else if (env.ZG_KEY_FILE) {
    raw = (await readFile(env.ZG_KEY_FILE, 'utf8')).trim()
    source = `key file ${env.ZG_KEY_FILE}`
  } else {
    return undefined
  }
  const hex = (raw.startsWith('0x') ? raw : `0x${raw}`) as Hex
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) {
    throw new Error(`The wallet key in ${source} is not a 32-byte hex private key.`)
  }
  return privateKeyAccount(hex)
}
