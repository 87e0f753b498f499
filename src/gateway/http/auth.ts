import type { MiddlewareHandler } from 'hono'
import { requestHeader } from '../../http/node-request.ts'
import { step } from '../steps.ts'
import type { ApiKeyIdentity, KeyStore } from './api-keys.ts'
import { unauthorized } from './openai-error.ts'

export type ApiKeyEnv = { Variables: { apiKey: ApiKeyIdentity } }

export type ApiKeyAuthOptions = {
  store: KeyStore
  /** The dev stack's well-known key (`sk-zg-dev`); pass it only in dev mode, never in `serve`. */
  devKey?: string
}

export const DEV_KEY_IDENTITY: ApiKeyIdentity = { id: 'dev', name: 'dev' }

// RFC 7235: the auth scheme is case-insensitive, and some clients send `bearer` (acceptance case 4).
const BEARER = /^\s*bearer\s+(\S+)\s*$/i

/**
 * Requires an API key as `Authorization: Bearer <key>` (what OpenAI SDKs and LangChain send) or `x-api-key`
 * (what Anthropic-style clients send), and sets `c.get('apiKey')`.
 *
 * Refusals are thrown as GatewayErrors, so install `errorHandler` as `app.onError`.
 *
 * @example app.use('/v1/*', apiKeyAuth({ store, devKey: dev ? 'sk-zg-dev' : undefined }))
 */
export function apiKeyAuth(options: ApiKeyAuthOptions): MiddlewareHandler<ApiKeyEnv> {
  const { devKey } = options
  return async (c, next) => {
    const key = presentedKey(requestHeader(c, 'authorization'), requestHeader(c, 'x-api-key'))
    if (key === undefined) {
      throw unauthorized(
        "You didn't provide an API key. Send it in an Authorization header using Bearer auth " +
          '(Authorization: Bearer YOUR_KEY) or in an x-api-key header. Create one with `zg-gateway keys create`.',
      )
    }
    const identity = devKey && sameText(key, devKey) ? DEV_KEY_IDENTITY : await options.store.verify(key)
    if (!identity) {
      const refusal = await options.store.refusal(key)
      if (refusal)
        throw unauthorized(`This API key (${redact(key)}) has ${refusal === 'expired' ? 'expired' : 'been revoked'}.`)
      throw unauthorized(`Incorrect API key provided: ${redact(key)}. List your keys with \`zg-gateway keys list\`.`)
    }
    c.set('apiKey', identity)
    step('auth')
    await next()
  }
}

/** String equality in a time that depends on the lengths only, not on where the strings first differ. */
export function sameText(a: string, b: string): boolean {
  let diff = a.length ^ b.length
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i % (b.length || 1))
  return diff === 0
}

function presentedKey(authorization: string | undefined, xApiKey: string | undefined): string | undefined {
  const bearer = authorization === undefined ? undefined : BEARER.exec(authorization)?.[1]
  if (bearer) return bearer
  const trimmed = xApiKey?.trim()
  return trimmed ? trimmed : undefined
}

/** Enough of a wrong key for its owner to recognise it, never enough to use it: at most 6 characters, ever. */
export function redact(key: string): string {
  return `${key.slice(0, Math.min(6, Math.floor(key.length / 2)))}***`
}
