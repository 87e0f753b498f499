import { decrypt, encrypt } from 'eciesjs'
import { bytesToHex, type Hex, hexToBytes } from 'viem'

/**
 * ECIES as 0G's fine-tuning uses it for the encrypted secret: eciesjs 0.4.18 with its default configuration
 * (secp256k1, uncompressed ephemeral key, HKDF-SHA256, AES-256-GCM). The provider encrypts the artifact's AES key to
 * the user's public key; the SDK's eciesDecrypt (`common/utils/encrypt.js`) opens it with the user's private key.
 * The output is `ephemeral public key (65) ‖ nonce (16) ‖ tag (16) ‖ ciphertext`.
 */
export function eciesEncrypt(publicKey: Hex, data: Uint8Array): Hex {
  return bytesToHex(encrypt(hexToBytes(publicKey), data))
}

export function eciesDecrypt(privateKey: Hex, encrypted: Hex): Uint8Array {
  return new Uint8Array(decrypt(hexToBytes(privateKey), hexToBytes(encrypted)))
}
