import { readUpstreamError } from '../http/upstream-error-body.ts'
import type { CatalogEntry } from '../providers/catalog.ts'
import { GatewayError } from './http/openai-error.ts'

function gatewayError(
  status: number,
  message: string,
  type: string,
  code: string | null,
  param: string | null = null,
  headers: Record<string, string> = {},
): GatewayError {
  return new GatewayError(status, message, { type, code, param, headers })
}

/** Errors from the provider that another provider might not have: worth failing over. */
export function worthFailover(status: number): boolean {
  return status >= 500 || status === 402 || status === 429 || status === 408
}

/**
 * Maps a provider's refusal onto what the gateway's client should see. The client's request was fine when the
 * provider refused the gateway itself (token, escrow): that is the gateway's upstream failing, a 502/503.
 */
export function mapProviderError(entry: CatalogEntry, status: number, text: string, retryAfter?: string): GatewayError {
  const { message, param, code } = readUpstreamError(text)
  const where = `provider ${entry.provider}`
  // Which provider refused is part of every answer it shaped, as it is of every answer it served.
  const headers: Record<string, string> = { 'x-zg-provider': entry.provider }
  if (retryAfter) headers['retry-after'] = retryAfter
  const error = (status: number, message: string, type: string, code: string | null, param: string | null = null) =>
    gatewayError(status, message, type, code, param, headers)
  if (status === 401 || status === 403) {
    return error(502, `${where} refused the gateway's session: ${message}`, 'api_error', code ?? 'upstream_auth_error')
  }
  if (status === 402)
    return error(503, `${where} has no escrow headroom left: ${message}`, 'api_error', 'provider_unfunded')
  if (status === 429) return error(429, message, 'rate_limit_error', code ?? 'rate_limit_exceeded')
  if (status === 404) return error(404, message, 'invalid_request_error', code ?? 'model_not_found', param)
  if (status === 413) return error(413, message, 'invalid_request_error', 'request_too_large')
  if (status >= 500)
    return error(status === 504 ? 504 : 502, `${where} failed: ${message}`, 'api_error', code ?? 'upstream_error')
  const context = /maximum context length|context window/i.test(message)
  return error(
    400,
    message,
    'invalid_request_error',
    context ? 'context_length_exceeded' : (code ?? 'upstream_rejected'),
    param,
  )
}

/** A 200 that is not what the endpoint promises: the provider broke the protocol, and another may not. */
export function protocolError(entry: CatalogEntry, what: string, code = 'upstream_protocol_error'): GatewayError {
  return gatewayError(502, `provider ${entry.provider} ${what}`, 'api_error', code, null, {
    'x-zg-provider': entry.provider,
  })
}
