import { GuardedFetchError, requestGuarded } from '../../http/guarded-json.ts'
import type { GatewayCore } from '../forward.ts'
import type { AdapterDeployer } from './runner.ts'

/**
 * Deploys a fine-tuned adapter on an inference provider of its base model (`PUT /v1/adapters/{name}` on a
 * zg-gateway provider node, which loads it into its vLLM backends), trying them in the router's order. The call is
 * the wallet's, authenticated with its session token: the node serves the adapter to that user alone.
 */
export function adapterDeployer(core: GatewayCore): AdapterDeployer {
  return async ({ name, baseModel, archive }) => {
    const candidates = core.router.candidates(baseModel)
    if (!candidates.length) throw new Error(`no inference provider serves ${baseModel} right now`)
    const refusals: string[] = []
    for (const entry of candidates) {
      try {
        if (core.escrow && !core.escrow.isOpen(entry.provider)) await core.escrow.ensureOpen(entry.provider)
        const authorization = await core.tokens.authorization(entry.provider)
        const res = await requestGuarded(core.dispatcher, `${entry.url}/v1/adapters/${encodeURIComponent(name)}`, {
          method: 'PUT',
          body: archive,
          contentType: 'application/zip',
          headers: { authorization },
          timeoutMs: 10 * 60_000,
          maxBytes: 64 * 1024,
        })
        if (res.statusCode >= 200 && res.statusCode < 300) return { provider: entry.provider }
        refusals.push(`${entry.provider}: ${res.statusCode} ${res.body.toString('utf8').slice(0, 200)}`)
      } catch (err) {
        if (!(err instanceof GuardedFetchError)) throw err
        refusals.push(`${entry.provider}: ${err.message}`)
      }
    }
    throw new Error(`no inference provider of ${baseModel} took the adapter (${refusals.join('; ')})`)
  }
}
