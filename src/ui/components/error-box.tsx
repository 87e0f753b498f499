import { GatewayCallError } from '../api.ts'

/** An error as the gateway worded it, with its request id to look up in the gateway's logs. */
export function ErrorBox({ error }: { error: Error | undefined }) {
  if (!error) return null
  const requestId = error instanceof GatewayCallError ? error.requestId : null
  return (
    <p class="error" role="alert">
      {error.message}
      {requestId && <span class="muted"> (request {requestId})</span>}
    </p>
  )
}
