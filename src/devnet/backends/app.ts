import { randomUUID } from 'node:crypto'
import { Hono } from 'hono'
import { chatCompletions } from './chat.ts'
import { completions } from './completions.ts'
import { embeddings } from './embeddings.ts'
import { errorResponse, vllmErrorBody } from './errors.ts'
import { faultInjection } from './faults.ts'
import { imageEdits } from './image-edits.ts'
import { imageGenerations } from './images.ts'
import { LoraAdapters, loadLoraAdapter, unloadLoraAdapter } from './lora-adapters.ts'
import { listModels } from './models.ts'
import { type DevBackendOptions, resolveOptions } from './options.ts'
import { speech, ttsEngine } from './speech.ts'
import { transcriptions } from './transcriptions.ts'

/**
 * The dev backends: an OpenAI-compatible server, shaped like vLLM, that the devnet's provider nodes sit in front of.
 * See faults.ts for the `x-dev-fault` header.
 */
export function createDevBackendApp(opts?: DevBackendOptions): Hono {
  const config = resolveOptions(opts)
  const tts = ttsEngine(config)
  const adapters = new LoraAdapters()
  const app = new Hono()
  // Like vLLM: echo the caller's request id (or make one) so logs on both sides line up.
  app.use(async (c, next) => {
    c.header('x-request-id', c.req.header('x-request-id') ?? randomUUID())
    await next()
  })
  app.get('/health', (c) => c.body(null, 200))
  app.use('/v1/*', faultInjection())
  app.get('/v1/models', async (c) =>
    c.json(listModels(config.maxContextTokens, (await tts())?.description ?? 'espeak-ng (not found)', adapters.list())),
  )
  app.post('/v1/load_lora_adapter', (c) => loadLoraAdapter(c, adapters))
  app.post('/v1/unload_lora_adapter', (c) => unloadLoraAdapter(c, adapters))
  app.post('/v1/chat/completions', (c) => chatCompletions(c, config, adapters))
  app.post('/v1/completions', (c) => completions(c, config, adapters))
  app.post('/v1/embeddings', (c) => embeddings(c, config))
  app.post('/v1/images/generations', (c) => imageGenerations(c))
  app.post('/v1/images/edits', (c) => imageEdits(c))
  app.post('/v1/audio/transcriptions', (c) => transcriptions(c))
  app.post('/v1/audio/speech', (c) => speech(c, tts))
  app.notFound((c) => c.json(vllmErrorBody(404, `Not Found: ${c.req.method} ${c.req.path}`), 404))
  app.onError((err, c) => errorResponse(c, err))
  return app
}
