import { getRandomValues } from 'node:crypto'
import {
  type Address,
  getAddress,
  type Hex,
  hashMessage,
  isAddress,
  isAddressEqual,
  keccak256,
  type LocalAccount,
  toBytes,
} from 'viem'
import { recoverDigestAddress } from '../chain/secp256k1.ts'

/**
 * The 0G session token ("app-sk-…"), the only request authentication of current providers.
 * Format: `app-sk-` + base64(rawMessage + "|" + signature) (0g-protocol.md §3.1; SDK 0.9.0
 * `lib.commonjs/inference/broker/base.js` `generateSessionToken`, `getHeader`, `createApiKey`; provider
 * 0g-serving-broker `api/inference/internal/ctrl/request.go` `ValidateSession`).
 */
export type SessionTokenClaims = {
  /** The user (payer) who signs the token. */
  address: Address
  provider: Address
  /** Creation time, ms since epoch. */
  timestamp: number
  /** Expiry, ms since epoch; 0 = never (persistent tokens only). */
  expiresAt: number
  nonce: string
  /** Must equal the sub-account's on-chain generation; revokeAllTokens bumps it. */
  generation: number
  /** 0–254: persistent token ("API key", individually revocable); 255: ephemeral. */
  tokenId: number
}

export type ParsedSessionToken = {
  claims: SessionTokenClaims
  /** The JSON exactly as received; the signature covers these bytes. */
  rawMessage: string
  signature: Hex
}

/** tokenId of ephemeral tokens (SDK base.js `EPHEMERAL_TOKEN_ID`). */
export const EPHEMERAL_TOKEN_ID = 255
/** Longest allowed ephemeral lifetime (SDK base.js `EPHEMERAL_TOKEN_MAX_DURATION`; provider checks the same). */
export const MAX_EPHEMERAL_LIFETIME_MS = 24 * 3600 * 1000

const PREFIX = 'app-sk-'

export type SessionTokenErrorCode =
  | 'malformed'
  | 'wrong_provider'
  | 'ephemeral_too_long'
  | 'expired'
  | 'generation_mismatch'
  | 'revoked'
  | 'bad_signature'

export class SessionTokenError extends Error {
  override name = 'SessionTokenError'
  readonly code: SessionTokenErrorCode

  constructor(code: SessionTokenErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/**
 * Signs a session token for `provider` with the user's wallet. Defaults to an ephemeral token (tokenId 255, 24 h),
 * which is what the SDK sends on every request; pass a tokenId 0–254 for a persistent token (API key), whose
 * lifetime defaults to 0 = never expires, as in the SDK's `createApiKey`.
 */
export async function createSessionToken(params: {
  account: LocalAccount
  provider: Address
  /** The sub-account's current generation (InferenceServing `getAccount(user, provider).generation`). */
  generation: bigint | number
  tokenId?: number
  lifetimeMs?: number
  now?: number
}): Promise<{ token: string; claims: SessionTokenClaims; rawMessage: string }> {
  const tokenId = params.tokenId ?? EPHEMERAL_TOKEN_ID
  if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId > EPHEMERAL_TOKEN_ID) {
    throw new RangeError(`tokenId must be an integer 0–255, got ${tokenId}`)
  }
  const generation = Number(params.generation)
  if (!Number.isSafeInteger(generation) || generation < 0) {
    throw new RangeError(`generation must be a non-negative safe integer, got ${params.generation}`)
  }
  const timestamp = params.now ?? Date.now()
  const ephemeral = tokenId === EPHEMERAL_TOKEN_ID
  const lifetimeMs = params.lifetimeMs ?? (ephemeral ? MAX_EPHEMERAL_LIFETIME_MS : 0)
  if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs < 0) {
    throw new RangeError(`lifetimeMs must be a non-negative integer, got ${lifetimeMs}`)
  }
  if (ephemeral && lifetimeMs === 0) {
    throw new RangeError('an ephemeral token (tokenId 255) must expire: lifetimeMs must be > 0')
  }
  if (ephemeral && lifetimeMs > MAX_EPHEMERAL_LIFETIME_MS) {
    throw new SessionTokenError(
      'ephemeral_too_long',
      `an ephemeral token may last at most ${MAX_EPHEMERAL_LIFETIME_MS} ms, asked for ${lifetimeMs} ms`,
    )
  }
  // Key order is the SDK's (base.js `generateSessionToken`); the provider hashes the raw string as sent.
  const claims: SessionTokenClaims = {
    address: params.account.address,
    provider: getAddress(params.provider),
    timestamp,
    expiresAt: lifetimeMs === 0 ? 0 : timestamp + lifetimeMs,
    nonce: sessionNonce(timestamp),
    generation,
    tokenId,
  }
  const rawMessage = JSON.stringify(claims)
  // personal_sign over the 32-byte keccak256 of the raw JSON (SDK: signer.signMessage(bytes32)).
  const signature = await params.account.signMessage({ message: { raw: keccak256(toBytes(rawMessage)) } })
  const token = PREFIX + Buffer.from(`${rawMessage}|${signature}`, 'utf8').toString('base64')
  return { token, claims, rawMessage }
}

/** Same shape as the SDK's Node nonce (`${Date.now()}-${base36 random}` right-padded with "0" to 32 chars). */
function sessionNonce(now: number): string {
  const random = Array.from(getRandomValues(new Uint8Array(13)), (b) => (b % 36).toString(36)).join('')
  return `${now}-${random}`.padEnd(32, '0').slice(0, 32)
}

/**
 * Parses `Authorization: Bearer app-sk-…` (scheme case-insensitive) or a bare `app-sk-…` token. Checks the shape
 * only: call {@link checkSessionTokenClaims}, the chain checks and {@link recoverSessionTokenSigner} after it.
 */
export function parseSessionToken(authorizationHeader: string): ParsedSessionToken {
  let value = authorizationHeader.trim()
  const scheme = /^bearer\s+/i.exec(value)
  if (scheme) value = value.slice(scheme[0].length)
  if (!value.startsWith(PREFIX)) throw malformed('the token does not start with app-sk-')
  const encoded = value.slice(PREFIX.length)
  // Go's StdEncoding is strict; Buffer.from(…, 'base64') silently skips junk, so check the alphabet first.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.replace(/=+$/, '').length % 4 === 1) {
    throw malformed('the token is not valid base64')
  }
  let decoded: string
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(encoded, 'base64'))
  } catch (cause) {
    throw malformed('the token payload is not UTF-8', cause)
  }
  // The signature is 0x-hex and never contains "|"; only the JSON (through the nonce) could.
  const bar = decoded.lastIndexOf('|')
  if (bar < 0) throw malformed('the token payload has no "|" between message and signature')
  const rawMessage = decoded.slice(0, bar)
  const signature = decoded.slice(bar + 1)
  if (!/^0x[0-9a-fA-F]{130}$/.test(signature)) throw malformed('the token signature is not 65 bytes of 0x-hex')
  let json: unknown
  try {
    json = JSON.parse(rawMessage)
  } catch (cause) {
    throw malformed('the token message is not JSON', cause)
  }
  return { claims: claimsOf(json), rawMessage, signature: signature as Hex }
}

function claimsOf(json: unknown): SessionTokenClaims {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw malformed('the token message is not a JSON object')
  }
  const o = json as Record<string, unknown>
  const address = addressField(o, 'address')
  const provider = addressField(o, 'provider')
  const timestamp = intField(o, 'timestamp')
  const expiresAt = intField(o, 'expiresAt')
  const generation = intField(o, 'generation')
  const tokenId = intField(o, 'tokenId')
  // Provider decodes tokenId into a uint8 (request.go `SessionToken.TokenId`).
  if (tokenId > EPHEMERAL_TOKEN_ID) throw malformed(`token field tokenId must be 0–255, got ${tokenId}`)
  if (typeof o.nonce !== 'string') throw malformed('token field nonce must be a string')
  return { address, provider, timestamp, expiresAt, nonce: o.nonce, generation, tokenId }
}

function addressField(o: Record<string, unknown>, key: string): Address {
  const v = o[key]
  if (typeof v !== 'string' || !isAddress(v, { strict: false })) throw malformed(`token field ${key} is not an address`)
  return getAddress(v)
}

function intField(o: Record<string, unknown>, key: string): number {
  const v = o[key]
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw malformed(`token field ${key} must be a non-negative integer`)
  }
  return v
}

function malformed(message: string, cause?: unknown): SessionTokenError {
  return new SessionTokenError('malformed', `malformed session token: ${message}`, { cause })
}

/**
 * Recovers the wallet that signed the token: EIP-191 over the 32-byte keccak256 of the raw JSON, v = 27/28 as the
 * provider requires (it subtracts 27). The caller compares the result with `claims.address`.
 */
export async function recoverSessionTokenSigner(parsed: ParsedSessionToken): Promise<Address> {
  const v = Number.parseInt(parsed.signature.slice(-2), 16)
  if (v !== 27 && v !== 28)
    throw new SessionTokenError('bad_signature', `session token signature has v = ${v}, not 27/28`)
  try {
    return await recoverDigestAddress(hashMessage({ raw: keccak256(toBytes(parsed.rawMessage)) }), parsed.signature)
  } catch (cause) {
    throw new SessionTokenError('bad_signature', 'session token signature does not recover to any address', { cause })
  }
}

/**
 * The provider's stateless checks, in its order (0g-protocol.md §3.1 steps 2–4): provider match, ephemeral
 * constraints, expiry. Next come generation/revocation ({@link checkSessionTokenRevocation}) and the signature.
 */
export function checkSessionTokenClaims(parsed: ParsedSessionToken, ctx: { provider: Address; now?: number }): void {
  const { claims } = parsed
  if (!isAddressEqual(claims.provider, ctx.provider)) {
    throw new SessionTokenError(
      'wrong_provider',
      `session token is for provider ${claims.provider}, this provider is ${getAddress(ctx.provider)}`,
    )
  }
  if (claims.tokenId === EPHEMERAL_TOKEN_ID) {
    if (claims.expiresAt === 0) {
      throw new SessionTokenError('ephemeral_too_long', 'an ephemeral session token (tokenId 255) must expire')
    }
    if (claims.expiresAt - claims.timestamp > MAX_EPHEMERAL_LIFETIME_MS) {
      throw new SessionTokenError(
        'ephemeral_too_long',
        `an ephemeral session token may last at most 24 h, this one lasts ${claims.expiresAt - claims.timestamp} ms`,
      )
    }
  }
  const now = ctx.now ?? Date.now()
  if (claims.expiresAt !== 0 && now > claims.expiresAt) {
    throw new SessionTokenError(
      'expired',
      `session token expired at ${new Date(claims.expiresAt).toISOString()} (now ${new Date(now).toISOString()})`,
    )
  }
}

/**
 * The provider's revocation check against the sub-account read from chain (request.go `validateTokenRevocation`):
 * the generation must be equal (older = revoked by revokeAllTokens, newer = invalid), and a persistent token's bit
 * in `revokedBitmap` must be clear. Ephemeral tokens skip the bitmap.
 */
export function checkSessionTokenRevocation(
  parsed: ParsedSessionToken,
  account: { generation: bigint; revokedBitmap: bigint },
): void {
  const { claims } = parsed
  if (BigInt(claims.generation) !== account.generation) {
    throw new SessionTokenError(
      'generation_mismatch',
      BigInt(claims.generation) < account.generation
        ? `session token generation ${claims.generation} was revoked (the account is at generation ${account.generation})`
        : `session token generation ${claims.generation} is ahead of the account (generation ${account.generation})`,
    )
  }
  if (claims.tokenId !== EPHEMERAL_TOKEN_ID && (account.revokedBitmap >> BigInt(claims.tokenId)) & 1n) {
    throw new SessionTokenError('revoked', `session token id ${claims.tokenId} has been revoked`)
  }
}
