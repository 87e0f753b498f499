import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import {
  type Address,
  bytesToHex,
  getAddress,
  type Hex,
  hashMessage,
  hexToBytes,
  keccak256,
  type PrivateKeyAccount,
  recoverAddress,
} from 'viem'
import { privateKeyToAccount, sign } from 'viem/accounts'

/**
 * secp256k1 signing and address recovery over a 32-byte digest, through libsecp256k1 (the `secp256k1` package's
 * prebuilt N-API binding) when it loads, else viem's pure-JS curve. Both give the same bytes: RFC 6979 deterministic
 * nonces, low-s, v = 27/28. The native path is what keeps per-response signing (provider node) and per-response
 * recovery (gateway) off the hot path's CPU budget: about 35 µs and 45 µs here, against 0.35 ms and 1.1 ms in JS.
 */
type NativeSecp256k1 = {
  ecdsaSign(msg32: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number }
  ecdsaRecover(signature: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean): Uint8Array
}

/** A package's prebuilt native binding, or undefined where it does not load (or ZG_PURE_JS_SECP256K1=1). */
function loadBinding<T>(load: (require: NodeJS.Require) => T): T | undefined {
  if (process.env.ZG_PURE_JS_SECP256K1 === '1') return undefined
  try {
    return load(createRequire(import.meta.url))
  } catch {
    return undefined
  }
}

// Its `bindings.js`, not the package's index, which falls back to the `elliptic` JS library, slower than viem's.
const native = loadBinding((require) => require('secp256k1/bindings.js') as NativeSecp256k1)

/** The `keccak` package's C sponge, as its prebuilt addon exports it. */
type KeccakState = {
  initialize(rate: number, capacity: number): void
  absorb(data: Buffer): void
  squeeze(length: number): Buffer
}

/**
 * keccak-256 in C, when the `keccak` package's prebuilt addon loads: about 5-9 µs here, against 25-28 µs for viem's
 * JS keccak. The addon is loaded the way the package loads it (node-gyp-build) and used without the package's own
 * API, which wraps every hash in a Transform stream (twice the time, and garbage on every call). One sponge serves
 * every call: each is synchronous and starts by resetting it.
 */
const nativeKeccak = loadBinding((require) => {
  const load = require('node-gyp-build') as (dir: string) => new () => KeccakState
  const sponge = new (load(dirname(require.resolve('keccak/package.json'))))()
  return (data: Buffer): Buffer => {
    // keccak-256: rate 1088 bits, capacity 512, no domain suffix (the pre-SHA-3 padding Ethereum uses).
    sponge.initialize(1088, 512)
    sponge.absorb(data)
    return sponge.squeeze(32)
  }
})

/** Which keccak-256 the EIP-191 digests use. */
export const keccakBackend: 'native' | 'js' = nativeKeccak ? 'native' : 'js'

/** Which implementation is in use: for `--version`-style diagnostics and the benchmark report. */
export const secp256k1Backend: 'libsecp256k1' | 'js' = native ? 'libsecp256k1' : 'js'

/**
 * The EIP-191 (personal_sign) digest of a UTF-8 text, as bytes: keccak256("\x19Ethereum Signed Message:\n" + length +
 * text). The same as viem's hashMessage(text), without its hex round trips (a third of a check's cost otherwise).
 */
export function personalMessageDigest(text: string): Uint8Array {
  const body = Buffer.from(text, 'utf8')
  const message = Buffer.concat([Buffer.from(`\x19Ethereum Signed Message:\n${body.length}`, 'utf8'), body])
  return nativeKeccak ? nativeKeccak(message) : keccak256(message, 'bytes')
}

const bytesOf = (value: Hex | Uint8Array) => (typeof value === 'string' ? hexToBytes(value) : value)
const hexOf = (value: Hex | Uint8Array) => (typeof value === 'string' ? value : bytesToHex(value))

/**
 * Signs a 32-byte digest: 65 bytes r‖s‖v as 0x hex, v = 27/28 (what personal_sign and the 0G protocol use). A signer
 * that signs often passes its key as bytes, decoded once.
 */
export async function signDigest(digest: Hex | Uint8Array, privateKey: Hex | Uint8Array): Promise<Hex> {
  if (!native) return sign({ hash: hexOf(digest), privateKey: hexOf(privateKey), to: 'hex' })
  const { signature, recid } = native.ecdsaSign(bytesOf(digest), bytesOf(privateKey))
  const out = new Uint8Array(65)
  out.set(signature)
  out[64] = 27 + recid
  return bytesToHex(out)
}

/**
 * The address whose key made `signature` (65 bytes, v = 0/1 or 27/28) over `digest`. Throws on a signature that
 * recovers to no point, as viem's `recoverAddress` does.
 */
export async function recoverDigestAddress(digest: Hex | Uint8Array, signature: Hex): Promise<Address> {
  if (!native) return recoverAddress({ hash: hexOf(digest), signature })
  const bytes = hexToBytes(signature)
  if (bytes.length !== 65) throw new Error(`signature is ${bytes.length} bytes, not 65`)
  const v = bytes[64]!
  const recid = v >= 27 ? v - 27 : v
  if (recid !== 0 && recid !== 1) throw new Error(`signature has v = ${v}`)
  const publicKey = native.ecdsaRecover(bytes.subarray(0, 64), recid, bytesOf(digest), false)
  // The same few keys sign nearly everything (a provider's TEE signer, a user's wallet): their addresses are
  // remembered rather than hashed and checksummed again for every response.
  const key = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('latin1')
  let address = addressOfKey.get(key)
  if (!address) {
    if (addressOfKey.size >= 4096) addressOfKey.clear()
    address = getAddress(`0x${keccak256(publicKey.subarray(1)).slice(-40)}`)
    addressOfKey.set(key, address)
  }
  return address
}

const addressOfKey = new Map<string, Address>()

/**
 * A viem account for a private key whose signMessage goes through libsecp256k1 (same signatures, a fraction of the
 * JavaScript signer's cost): the gateway's wallet signs a session token per provider and a receipt per answer.
 */
export function privateKeyAccount(privateKey: Hex): PrivateKeyAccount {
  const base = privateKeyToAccount(privateKey)
  const key = hexToBytes(privateKey)
  const account: PrivateKeyAccount = native
    ? {
        ...base,
        signMessage: async ({ message }) =>
          signDigest(
            typeof message === 'string' ? personalMessageDigest(message) : hexToBytes(hashMessage(message)),
            key,
          ),
      }
    : base
  accountKeys.set(account, privateKey)
  return account
}

/** The keys of the accounts privateKeyAccount made, reachable only through {@link withAccountKey}. */
const accountKeys = new WeakMap<object, Hex>()

/**
 * Runs `use` with the private key of an account made by privateKeyAccount: for the rare operation that needs the
 * key itself (decrypting what was ECIES-encrypted to the wallet). The key is handed to `use` alone, never returned
 * by this module or put on the account object, so it cannot leak through a log of the account.
 */
export function withAccountKey<T>(account: object, use: (privateKey: Hex) => T): T {
  const key = accountKeys.get(account)
  if (!key) throw new Error('this account holds no private key here (it was not loaded from a key)')
  return use(key)
}
