import { type Context, Hono } from 'hono'
import { getAddress, isAddress } from 'viem'
import { InvalidAttestationNonceError } from '../attestation/tee-signer.ts'
import { metricsAccess } from '../observability/metrics-access.ts'
import { authenticate } from './authenticate.ts'
import { corsHeaders } from './cors.ts'
import { ProviderError } from './provider-error.ts'
import { JSON_ENDPOINTS, jsonBytes, MULTIPART_ENDPOINTS, type ProxyDeps, proxyJson, proxyMultipart } from './proxy.ts'

/**
 * The provider node's HTTP API: the 0G provider endpoints (0g-protocol.md §4) in front of an OpenAI-compatible
 * backend. Errors are always JSON.
 */
export function createProviderApp(deps: ProxyDeps): Hono {
  const app = new Hono()
  app.use('*', corsHeaders())
  const { observability } = deps
  if (observability) {
    // Each proxied call is followed to its last byte, for its log line and metrics.
    app.post('/v1/proxy/*', observability.requests())
    app.get('/metrics', async (c) => {
      // A node's URL is public (it is on-chain): its metrics answer loopback scrapers unless --metrics-public.
      if (metricsAccess(c, { public: deps.metricsPublic }) !== 'allowed')
        throw new ProviderError(
          403,
          'forbidden',
          '/metrics answers loopback clients only (or start with --metrics-public)',
        )
      return c.body(await observability.metrics.text(), 200, { 'content-type': observability.metrics.contentType })
    })
  }

  for (const endpoint of JSON_ENDPOINTS) {
    app.post(`/v1/proxy/${endpoint}`, (c) => proxyJson(c, deps, endpoint))
    // 0G providers collapse /v1/proxy/v1/... to /v1/proxy/... (const.go SplitTargetRoute, 2026).
    app.post(`/v1/proxy/v1/${endpoint}`, (c) => proxyJson(c, deps, endpoint))
  }
  for (const endpoint of MULTIPART_ENDPOINTS) {
    app.post(`/v1/proxy/${endpoint}`, (c) => proxyMultipart(c, deps, endpoint))
    app.post(`/v1/proxy/v1/${endpoint}`, (c) => proxyMultipart(c, deps, endpoint))
  }

  app.get('/v1/proxy/signature/:chatKey', async (c) => {
    // The 0G broker lower-cases the id; our keys are lower-case uuids, so both spellings find it.
    const key = c.req.param('chatKey').toLowerCase()
    const found = await deps.store.getSignature(key)
    if (!found) throw new ProviderError(404, 'signature_not_found', `no signature for ${key} (unknown, or expired)`)
    return c.json({
      text: found.text,
      signature: found.signature,
      signing_address: deps.signer.address,
      signing_algo: 'ecdsa',
    })
  })

  const attestation = async (nonce: string | undefined) => {
    try {
      return await deps.signer.attestation(nonce as `0x${string}` | undefined)
    } catch (err) {
      if (err instanceof InvalidAttestationNonceError)
        throw new ProviderError(400, 'invalid_nonce', err.message, { param: 'nonce' })
      throw err
    }
  }
  app.get('/v1/quote', async (c) => c.json(await attestation(undefined)))
  app.get('/v1/proxy/attestation/report', async (c) => c.json(await attestation(c.req.query('nonce'))))

  app.get('/v1/models', async (c) => {
    const service = await deps.chain.service()
    if (!service) return c.json({ object: 'list', data: [] })
    return c.json({
      object: 'list',
      data: [
        {
          id: service.model,
          object: 'model',
          created: Number(service.updatedAt),
          owned_by: service.provider,
          service_type: service.serviceType,
          verifiability: service.verifiability,
          pricing: {
            input_price: service.inputPrice.toString(),
            output_price: service.outputPrice.toString(),
            unit: 'neuron',
          },
          tee_attested: deps.signer.kind === 'dstack',
          tee_signer: deps.signer.address,
        },
      ],
    })
  })

  app.get('/v1/user/:address/unsettledfee', async (c) => {
    const address = c.req.param('address')
    if (!isAddress(address, { strict: false }))
      throw new ProviderError(400, 'invalid_address', `not an address: ${address}`)
    const { user } = await authenticate(c.req.header('authorization'), { chain: deps.chain })
    if (user.toLowerCase() !== address.toLowerCase()) {
      throw new ProviderError(403, 'forbidden', 'a session token may only read its own unsettled fee')
    }
    return c.json({ userAddress: getAddress(address), unsettledFee: (await deps.store.unsettledFee(user)).toString() })
  })

  const adapters = deps.adapters
  if (adapters) {
    // Fine-tuned adapters, deployed by their owner (a session token) and served to them alone (adapters.ts).
    const owner = async (c: Context) => (await authenticate(c.req.header('authorization'), { chain: deps.chain })).user
    app.get('/v1/adapters', async (c) =>
      c.json({ object: 'list', data: adapters.list(await owner(c)).map((id: string) => ({ id, object: 'adapter' })) }),
    )
    app.put('/v1/adapters/:name{.+}', async (c) => {
      const user = await owner(c)
      const archive = await jsonBytes(c, deps.adapterLimit ?? 1024 ** 3)
      await adapters.deploy(c.req.param('name'), user, archive)
      return c.json({ id: c.req.param('name'), object: 'adapter', owner: user })
    })
    app.delete('/v1/adapters/:name{.+}', async (c) => {
      const deleted = await adapters.remove(c.req.param('name'), await owner(c))
      if (!deleted) throw new ProviderError(404, 'adapter_not_found', `no adapter ${c.req.param('name')} of yours`)
      return c.json({ id: c.req.param('name'), object: 'adapter', deleted: true })
    })
  }

  app.get('/health', (c) => {
    const backends = deps.backends.states()
    // The backends' addresses are the operator's business (the node's URL is public): loopback clients see them.
    const detailed = metricsAccess(c, { public: false }) === 'allowed'
    return c.json({
      status: backends.some((b) => b.up) ? 'ok' : 'degraded',
      signer: deps.signer.address,
      tee: deps.signer.kind,
      backends: backends.map((b, index) => ({
        index,
        ...(detailed && { url: b.url, error: b.error }),
        up: b.up,
        in_flight: b.inFlight,
        calls: b.calls,
        checked_at: b.checkedAt,
      })),
    })
  })

  app.notFound((c) =>
    c.json(new ProviderError(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`).toJSON(), 404),
  )
  app.onError((err, c) => {
    if (err instanceof ProviderError) {
      for (const [k, v] of Object.entries(err.headers)) c.header(k, v)
      return c.json(err.toJSON(), err.status as 400)
    }
    deps.log(`provider node error on ${c.req.method} ${c.req.path}: ${(err as Error).stack ?? err}`)
    return c.json(new ProviderError(500, 'internal_error', 'internal error in the provider node').toJSON(), 500)
  })
  return app
}
