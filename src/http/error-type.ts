/**
 * OpenAI's `error.type` for a status, as the gateway and the provider node both send it: the one map, so a client
 * reads the same type for the same status from either.
 */
export function errorTypeFor(status: number): string {
  if (status === 401) return 'authentication_error'
  // 0G providers refuse an unfunded sub-account with a 402; OpenAI's word for running out is insufficient_quota.
  if (status === 402) return 'insufficient_quota'
  if (status === 403) return 'permission_error'
  if (status === 429) return 'rate_limit_error'
  if (status >= 500) return 'server_error'
  return 'invalid_request_error'
}
