import { type Context, Hono } from 'hono'
import { type RateCounter, RateLimiter } from '../billing/rate-limits.ts'
import { DEFAULT_MAX_OUTPUT_TOKENS } from '../billing/worst-case-fee.ts'
import { clientSignal, nodeResponse, requestHeader } from '../http/node-request.ts'
import type { ObservationEnv } from '../observability/http-requests.ts'
import { metricsAccess } from '../observability/metrics-access.ts'
import { adminRoutes } from './admin/routes.ts'
import { embeddingsAsBase64 } from './embeddings-encoding.ts'
import type { FineTuning } from './fine-tuning/fine-tuning.ts'
import { fineTuningRoutes } from './fine-tuning/routes.ts'
import { type ForwardRequest, forward, type GatewayCore } from './forward.ts'
import { adminAuth } from './http/admin-auth.ts'
import type { KeyStore } from './http/api-keys.ts'
import { type ApiKeyEnv, apiKeyAuth } from './http/auth.ts'
import { readJsonBody } from './http/body.ts'
import { type CorsEnv, type CorsOrigins, gatewayCors } from './http/cors.ts'
import { rewriteMultipartField } from './http/multipart-field-rewrite.ts'
import { readMultipartUpload } from './http/multipart-upload.ts'
import { methodNotAllowed, notFoundHandler } from './http/not-found.ts'
import {
  badRequest,
  errorHandler,
  GatewayError,
  modelNotFound,
  notFound,
  payloadTooLarge,
  unauthorized,
} from './http/openai-error.ts'
import { type RequestIdEnv, requestId, requestIdOnResponse } from './http/request-id.ts'
import {
  validateChatCompletion,
  validateCompletion,
  validateEmbeddings,
  validateImageGeneration,
  validateSpeech,
} from './http/validate.ts'
import { KeyAdmission } from './key-admission.ts'
import { listModels } from './models.ts'
import { openapiRoutes } from './openapi-routes.ts'
import { receiptJson } from './receipts.ts'
import { asResponsesError, deleteResponse, inputItems, responsesCall, storedResponse } from './responses/api.ts'
import { routingControlsOf } from './routing-controls.ts'
import { step } from './steps.ts'
import { uiRoutes } from './ui-routes.ts'
import { IMAGE_EDIT_FORM, TRANSCRIPTION_FORM, type UploadForm } from './upload-forms.ts'
import { requirementOf } from './verification-policy.ts'

export type GatewayAppOptions = {
  core: GatewayCore
  keys: KeyStore
  /** Per-key rate limits: in this process's memory unless given (Postgres, shared by several instances). */
  rateLimiter?: RateCounter
  /** The dev stack's key (sk-zg-dev); only in dev mode. */
  devKey?: string
  /** Largest JSON body, in bytes (default 16 MiB). */
  bodyLimit?: number
  /** Largest audio upload, in bytes (default 25 MiB, as OpenAI). */
  uploadLimit?: number
  /** The key of the admin API (`/admin/*`), distinct from every inference key; without one the admin API is off. */
  adminKey?: string
  /** Origins browser apps may call from (`*`, an origin, or `scheme://host:*`); none by default. */
  corsOrigins?: CorsOrigins
  /** `--metrics-public`: /metrics answers any client, not only loopback ones and holders of the admin key. */
  metricsPublic?: boolean
  /** The fine-tuning API (`/v1/files`, `/v1/fine_tuning/jobs`), when the network has a fine-tuning contract. */
  fineTuning?: FineTuning
  /** Whether the gateway can serve: the catalog loaded at least once. */
  ready: () => boolean
  log: (line: string) => void
}

type Env = RequestIdEnv & ApiKeyEnv & CorsEnv & ObservationEnv

const INCLUDE_USAGE = Buffer.from(',"stream_options":{"include_usage":true}}')

/** A JSON object's bytes with `"stream_options":{"include_usage":true}` added before its closing brace. */
function withIncludeUsage(bytes: Uint8Array): Uint8Array {
  let end = bytes.length - 1
  while (end > 0 && bytes[end] !== 0x7d) end--
  return Buffer.concat([bytes.subarray(0, end), INCLUDE_USAGE])
}

const JSON_TYPE = 'application/json'

/** The JSON object a request body holds, for the key checks' estimates; undefined when it is not one. */
function parsedBody(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const json: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'))
    return json && typeof json === 'object' ? (json as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** The body to forward: the received bytes, unless a field had to be added or translated. */
function bodyBytes(
  bytes: Uint8Array,
  json: Record<string, unknown>,
  patch: Record<string, unknown> | undefined,
): Uint8Array {
  return patch ? Buffer.from(JSON.stringify({ ...json, ...patch })) : bytes
}

/**
 * The gateway's OpenAI-compatible API. Handlers are thin: validate, pick what routing needs, forward. Streams ask
 * the provider for usage (the gateway meters every call) and hide the usage chunk unless the client asked for it.
 */
export function createGatewayApp(options: GatewayAppOptions): Hono<Env> {
  const { core } = options
  const bodyLimit = options.bodyLimit ?? 16 * 1024 * 1024
  const uploadLimit = options.uploadLimit ?? 25 * 1024 * 1024
  const app = new Hono<Env>()
  app.use('*', requestId())
  app.onError(errorHandler(options.log))
  app.notFound(notFoundHandler)
  // Each API call is followed from its arrival to its last byte, for its log line and its metrics; the bookkeeping
  // waits in the off-path queue, where it delays no client.
  const observability = core.observability
  if (observability) {
    const observe = observability.requests((job) => core.offPath.add(job))
    app.use('/v1/*', observe)
    app.use('/admin/*', observe)
    app.get('/metrics', async (c) => {
      const access = metricsAccess(c, { public: options.metricsPublic, adminKey: options.adminKey })
      if (access === 'unauthorized')
        throw unauthorized(
          'Scraping /metrics from another host takes the admin key: Authorization: Bearer <admin key>.',
        )
      if (access === 'forbidden') {
        throw new GatewayError(
          403,
          '/metrics answers loopback clients only: start the gateway with --metrics-public, or with an admin key for scrapers to present.',
          { code: 'metrics_not_public' },
        )
      }
      return c.body(await observability.metrics.text(), 200, { 'content-type': observability.metrics.contentType })
    })
  }

  app.get('/healthz', (c) => c.json({ status: 'ok' }))
  app.get('/readyz', (c) =>
    options.ready()
      ? c.json({ status: 'ready', providers: core.catalog.entries().length })
      : c.json({ status: 'starting' }, 503),
  )
  app.route('/', uiRoutes())
  app.route('/', openapiRoutes())

  // Before authentication: a browser's preflight carries no API key.
  if (options.corsOrigins?.length) app.use('*', gatewayCors(options.corsOrigins))
  app.use('/v1/*', apiKeyAuth({ store: options.keys, devKey: options.devKey }))
  app.use('/admin/*', adminAuth(options.adminKey))
  app.route('/admin', adminRoutes({ core, keys: options.keys }))

  const base = (c: Context<Env>) => ({
    observation: c.get('observation'),
    requestId: c.get('requestId'),
    apiKeyId: c.get('apiKey').id,
    signal: clientSignal(c),
    responseHeaders: c.get('corsHeaders'),
  })

  const keyAdmission = new KeyAdmission(options.keys.budgets, options.rateLimiter ?? new RateLimiter())

  /** Forwards the call; the answer carries the request id (forward() puts it on every response it builds). */
  const relayed = async (c: Context<Env>, asked: ForwardRequest) => {
    const observed = asked.observation
    if (observed) {
      observed.model = asked.model
      observed.endpoint = asked.endpoint
      observed.stream = asked.stream
    }
    // A header it cannot read is refused before the key's rate limits count the call.
    const requirement = requirementOf(c.get('apiKey').policy, {
      minVerification: requestHeader(c, 'x-zg-min-verification'),
      trustMode: requestHeader(c, 'x-0g-provider-trust-mode'),
    })
    const controls = routingControlsOf(
      (name) => requestHeader(c, name) ?? undefined,
      c.get('apiKey').policy?.routing ?? undefined,
    )
    // The key's policy, for keys that have one: checked here, before forward() dispatches anything.
    const json = c.get('apiKey').policy && asked.body instanceof Uint8Array ? parsedBody(asked.body) : undefined
    const checked =
      c.get('apiKey').policy &&
      (await keyAdmission.admission(c.get('apiKey'), {
        model: asked.model,
        endpoint: asked.endpoint,
        json,
        bodyBytes: asked.body instanceof Uint8Array ? asked.body.length : Number(c.req.header('content-length') ?? 0),
      }))
    const admitted: ForwardRequest = checked
      ? {
          ...asked,
          body: checked.body ?? asked.body,
          admission: checked.admission,
          responseHeaders: { ...asked.responseHeaders, ...checked.headers },
        }
      : asked
    const keyTimeouts = c.get('apiKey').policy?.timeouts
    const req =
      requirement || keyTimeouts || controls
        ? { ...admitted, requirement, timeouts: keyTimeouts ?? undefined, controls }
        : admitted
    try {
      const response = await forward(core, req)
      requestIdOnResponse(c)
      return response
    } catch (err) {
      checked?.admission
        .release()
        .catch((e: Error) => core.log(`gateway: releasing a reservation failed: ${e.message}`))
      // The cap this gateway added is what overflowed, unless the provider blames the prompt alone.
      const ourCap =
        checked?.body &&
        err instanceof GatewayError &&
        err.code === 'context_length_exceeded' &&
        err.param !== 'messages' &&
        err.param !== 'prompt'
      if (ourCap) {
        throw new GatewayError(
          err.status,
          `${err.message} (This API key has a budget, so a call without max_tokens is capped at ` +
            `${DEFAULT_MAX_OUTPUT_TOKENS} output tokens: set a smaller max_tokens.)`,
          { type: err.type, code: err.code, param: 'max_tokens', headers: err.headers },
        )
      }
      throw err
    }
  }

  /** Streams always ask the provider for usage; legacy fields are forwarded translated. */
  const forwardedBody = (
    bytes: Uint8Array,
    json: Record<string, unknown>,
    view: { stream: boolean; includeUsage: boolean; rewrite?: Record<string, unknown> },
  ) => {
    const source = view.rewrite ?? json
    if (view.stream && !view.includeUsage) {
      // The common case, no stream_options at all: append the field to the received bytes instead of
      // re-serializing the whole body.
      if (!view.rewrite && source.stream_options === undefined) return withIncludeUsage(bytes)
      const options = { ...((source.stream_options as object | undefined) ?? {}), include_usage: true }
      return bodyBytes(bytes, source, { stream_options: options })
    }
    return view.rewrite ? bodyBytes(bytes, source, {}) : bytes
  }

  for (const [path, endpoint, validate] of [
    ['/v1/chat/completions', 'chat/completions', validateChatCompletion],
    ['/v1/completions', 'completions', validateCompletion],
  ] as const) {
    app.post(path, async (c) => {
      const { bytes, json } = await readJsonBody(c, { limit: bodyLimit })
      step('body')
      const view = validate(json)
      step('validated')
      const req: ForwardRequest = {
        ...base(c),
        endpoint,
        model: view.model,
        body: forwardedBody(bytes, json, view),
        contentType: JSON_TYPE,
        stream: view.stream,
        clientWantsUsage: view.includeUsage,
        outgoing: nodeResponse(c),
      }
      return relayed(c, req)
    })
    app.all(path, methodNotAllowed(['POST']))
  }

  // The Responses API, served by the providers' chat completions (src/gateway/responses/).
  app.post('/v1/responses', async (c) => {
    const { json } = await readJsonBody(c, { limit: bodyLimit })
    const call = await responsesCall(json, core.responses, c.get('apiKey').id)
    return relayed(c, { ...base(c), ...call, outgoing: nodeResponse(c) }).catch((err) => {
      throw asResponsesError(err)
    })
  })
  app.all('/v1/responses', methodNotAllowed(['POST']))
  app.get('/v1/responses/:id', async (c) => {
    if (c.req.query('stream') === 'true')
      throw badRequest('Replaying a stored response as a stream is not available.', 'stream')
    return c.json(await storedResponse(core.responses, c.req.param('id'), c.get('apiKey').id))
  })
  app.delete('/v1/responses/:id', async (c) =>
    c.json(await deleteResponse(core.responses, c.req.param('id'), c.get('apiKey').id)),
  )
  app.all('/v1/responses/:id', methodNotAllowed(['GET', 'DELETE']))
  app.get('/v1/responses/:id/input_items', async (c) =>
    c.json(await inputItems(core.responses, c.req.param('id'), c.get('apiKey').id, c.req.query())),
  )
  app.all('/v1/responses/:id/input_items', methodNotAllowed(['GET']))

  app.post('/v1/embeddings', async (c) => {
    const { bytes, json } = await readJsonBody(c, { limit: bodyLimit })
    const view = validateEmbeddings(json)
    const response = await relayed(c, {
      ...base(c),
      endpoint: 'embeddings',
      model: view.model,
      body: bytes,
      contentType: JSON_TYPE,
      stream: false,
      clientWantsUsage: false,
    })
    // OpenAI SDKs ask for base64 and read nothing else: a backend that answers floats anyway must not hand them
    // empty vectors (openai-clients.md §0.5).
    return view.encodingFormat === 'base64' ? embeddingsAsBase64(response) : response
  })
  app.all('/v1/embeddings', methodNotAllowed(['POST']))

  app.post('/v1/images/generations', async (c) => {
    const { bytes, json } = await readJsonBody(c, { limit: bodyLimit })
    const view = validateImageGeneration(json)
    if (view.responseFormat === 'url') {
      throw badRequest(
        'response_format "url" is not available: 0G providers return images inline. Use response_format "b64_json".',
        'response_format',
        'unsupported_response_format',
      )
    }
    return relayed(c, {
      ...base(c),
      endpoint: 'images/generations',
      model: view.model,
      // Without a response_format a provider may default to URLs, which nobody here could serve.
      body: bodyBytes(bytes, json, view.responseFormat ? undefined : { response_format: 'b64_json' }),
      contentType: JSON_TYPE,
      stream: false,
      clientWantsUsage: false,
    })
  })
  app.all('/v1/images/generations', methodNotAllowed(['POST']))

  // Text-to-speech: the answer is the audio itself, its duration and fee in headers (0G audio-generation).
  app.post('/v1/audio/speech', async (c) => {
    const { bytes, json } = await readJsonBody(c, { limit: bodyLimit })
    const view = validateSpeech(json)
    return relayed(c, {
      ...base(c),
      endpoint: 'audio/speech',
      model: view.model,
      body: bytes,
      contentType: JSON_TYPE,
      stream: false,
      clientWantsUsage: false,
    })
  })
  app.all('/v1/audio/speech', methodNotAllowed(['POST']))

  /**
   * A multipart upload: read as it arrives, routed by its model, streamed to the provider byte for byte (see
   * readMultipartUpload). It cannot be replayed, so forward() tries one provider only.
   */
  const relayedUpload = async (c: Context<Env>, endpoint: string, form: UploadForm) => {
    const contentType = c.req.header('content-type') ?? ''
    if (!contentType.toLowerCase().startsWith('multipart/form-data')) {
      throw badRequest(form.wrongType, null, 'invalid_content_type')
    }
    const declared = Number(c.req.header('content-length') ?? 0)
    if (declared > uploadLimit) throw payloadTooLarge(uploadLimit)
    if (!c.req.raw.body) throw badRequest('the upload is empty', form.requiredFile.param, 'missing_required_parameter')
    const upload = await readMultipartUpload(c.req.raw.body, { ...form, contentType, limit: uploadLimit })
    try {
      form.check?.(upload.fields)
      return await relayed(c, {
        ...base(c),
        endpoint,
        model: upload.model,
        body: upload.body,
        bodySha256: upload.sha256,
        // An alias: the form the provider reads names the real model (and the hash covers the form as sent).
        retarget: (model) => () =>
          upload.body((bytes) => rewriteMultipartField(bytes, upload.boundary, 'model', model)),
        contentType,
        stream: false,
        clientWantsUsage: false,
      })
    } finally {
      // The provider has read the whole upload by the time it answers.
      await upload.dispose()
    }
  }

  app.post('/v1/audio/transcriptions', (c) => relayedUpload(c, 'audio/transcriptions', TRANSCRIPTION_FORM))
  app.all('/v1/audio/transcriptions', methodNotAllowed(['POST']))

  app.post('/v1/images/edits', (c) => relayedUpload(c, 'images/edits', IMAGE_EDIT_FORM))
  app.all('/v1/images/edits', methodNotAllowed(['POST']))

  if (options.fineTuning) app.route('/', fineTuningRoutes(options.fineTuning))

  // The network's models, then the key's own fine-tuned ones.
  const models = async (c: Context<Env>) => [
    ...listModels(core.catalog, core.aliases),
    ...((await core.tunedModels?.list(c.get('apiKey').id)) ?? []),
  ]
  app.get('/v1/models', async (c) => c.json({ object: 'list', data: await models(c) }))
  app.all('/v1/models', methodNotAllowed(['GET']))
  // Ids hold slashes (`dev/chat-deterministic`, `Qwen/Qwen2.5-7B-Instruct`); SDKs send them percent-encoded or not.
  app.get('/v1/models/:id{.+}', async (c) => {
    const id = c.req.param('id')
    const model = (await models(c)).find((m) => m.id === id)
    if (!model) throw modelNotFound(id)
    return c.json(model)
  })
  app.all('/v1/models/:id{.+}', methodNotAllowed(['GET']))

  app.get('/v1/receipts/:id', async (c) => {
    const call = await core.ledger.get(c.req.param('id'))
    // Another key's receipt is as absent as a missing one: its existence is not this key's business.
    if (!call || call.apiKeyId !== c.get('apiKey').id)
      throw notFound(`no receipt for request ${c.req.param('id')}`, 'receipt_not_found')
    return c.json(receiptJson(call))
  })
  return app
}
