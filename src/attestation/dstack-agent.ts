import { existsSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'

/**
 * Where the dstack guest agent listens, in the order the dstack SDK probes them (Dstack-TEE/dstack
 * `sdk/js/src/index.ts` `DSTACK_SOCKET_PATHS`).
 */
export const DSTACK_SOCKET_PATHS = [
  '/var/run/dstack.sock',
  '/run/dstack.sock',
  '/var/run/dstack/dstack.sock',
  '/run/dstack/dstack.sock',
] as const

/** The agent endpoint: the one given, else env DSTACK_SIMULATOR_ENDPOINT, else the first socket that exists. */
export function resolveDstackEndpoint(endpoint?: string, env: NodeJS.ProcessEnv = process.env): string {
  return (
    endpoint ??
    (env.DSTACK_SIMULATOR_ENDPOINT || undefined) ??
    DSTACK_SOCKET_PATHS.find((p) => existsSync(p)) ??
    DSTACK_SOCKET_PATHS[0]
  )
}

/** A failed call to the dstack guest agent: unreachable, HTTP error, `{"error": …}` body, or unusable answer. */
export class DstackAgentError extends Error {
  override name = 'DstackAgentError'
  readonly endpoint: string
  readonly method: string
  readonly status: number | undefined
  readonly body: string | undefined

  constructor(params: {
    endpoint: string
    method: string
    message: string
    status?: number
    body?: string
    cause?: unknown
  }) {
    super(`dstack agent ${params.method} at ${params.endpoint}: ${params.message}`, { cause: params.cause })
    this.endpoint = params.endpoint
    this.method = params.method
    this.status = params.status
    this.body = params.body
  }
}

/**
 * POSTs JSON to one method of the agent's v0 HTTP API (`/<Method>`; `sdk/curl/api.md`), over the unix socket
 * (`socketPath`) or an http(s) URL such as the simulator's. The agent reports some failures as 200 with
 * `{"error": …}`; those throw too.
 */
export function callDstackAgent<T>(
  endpoint: string,
  method: string,
  body: unknown,
  options: { timeoutMs?: number } = {},
): Promise<T> {
  const payload = JSON.stringify(body)
  const path = `/${method}`
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
  const fail = (message: string, extra: { status?: number; body?: string; cause?: unknown } = {}) =>
    new DstackAgentError({ endpoint, method, message, ...extra })

  return new Promise<T>((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', (cause) => reject(fail('response stream failed', { cause })))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const status = res.statusCode ?? 0
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        const agentError =
          typeof json === 'object' && json !== null && 'error' in json ? String((json as { error: unknown }).error) : ''
        if (status < 200 || status >= 300) {
          reject(fail(`HTTP ${status}${agentError ? `: ${agentError}` : ''}`, { status, body: text.slice(0, 500) }))
        } else if (agentError) {
          reject(fail(agentError, { status, body: text.slice(0, 500) }))
        } else if (json === undefined) {
          reject(fail('the answer is not JSON', { status, body: text.slice(0, 500) }))
        } else {
          resolve(json as T)
        }
      })
    }
    let req: http.ClientRequest
    if (/^https?:\/\//.test(endpoint)) {
      const url = new URL(path, endpoint)
      const lib = url.protocol === 'https:' ? https : http
      req = lib.request(url, { method: 'POST', headers, agent: false }, onResponse)
    } else {
      req = http.request(
        { socketPath: endpoint, path, method: 'POST', headers: { ...headers, Host: 'localhost' }, agent: false },
        onResponse,
      )
    }
    req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(fail('timed out')))
    req.on('error', (cause) =>
      reject(cause instanceof DstackAgentError ? cause : fail(`unreachable (${cause.message})`, { cause })),
    )
    req.end(payload)
  })
}
