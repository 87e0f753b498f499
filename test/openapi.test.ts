import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { dereference, parse, validate } from '@readme/openapi-parser'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_CHAT_MODEL, DEV_EMBEDDING_MODEL } from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'

/**
 * openapi.yaml against the gateway it describes: a valid OpenAPI 3.1 document; the same routes as the running app,
 * both ways; OpenAI's field names on the routes shared with OpenAI (checked against the vendored extract of OpenAI's
 * spec, test/fixtures/openai-openapi); real answers of the dev stack valid against its response schemas (and
 * against OpenAI's), fine-tuning included (a file uploaded, a job trained on the dev fine-tuning provider); served
 * at /openapi.yaml and rendered at /docs from this origin only.
 */

const ROOT = join(import.meta.dirname, '..')
const SPEC_PATH = join(ROOT, 'openapi.yaml')
const DEV_KEY = 'sk-zg-dev'
const ADMIN_KEY = 'sk-zg-dev-admin'
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

type Json = Record<string, unknown>
type Operation = {
  requestBody?: { content: Record<string, { schema: Json }> }
  responses: Record<string, { content?: Record<string, { schema: Json }>; headers?: Record<string, { schema: Json }> }>
}
type Document = { paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>; components: Json }
type Extract = {
  operations: Record<string, { request?: { contentType: string; required: string[]; properties: string[] } }>
  components: { schemas: Record<string, Json> }
}

const extract = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/openai-openapi/extract.json'), 'utf8')) as Extract

let stack: Awaited<ReturnType<typeof startTestStack>>
/** openapi.yaml as written ($refs kept, for ajv), and with every $ref resolved (to read request schemas). */
let doc: Document
let resolved: Document
let ajv: Ajv2020

const SPEC_ID = 'https://zg-gateway.local/openapi.yaml'
const OPENAI_ID = 'https://openai.local/openapi.json'

/**
 * OpenAI's spec still carries OpenAPI 3.0's `nullable: true` in places, which JSON Schema 2020-12 does not know:
 * `type: T` becomes `type: [T, "null"]`, a node without a type is wrapped in `anyOf: [node, {type: "null"}]`
 * (openai-clients.md §1). Likewise 3.0's boolean `exclusiveMinimum: true` beside `minimum` (the fine-tuning
 * hyperparameters' learning_rate_multiplier) becomes 2020-12's numeric `exclusiveMinimum`.
 */
function normalizeNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(normalizeNullable)
  if (!node || typeof node !== 'object') return node
  const out: Json = {}
  for (const [k, v] of Object.entries(node)) if (k !== 'nullable') out[k] = normalizeNullable(v)
  if (typeof out.exclusiveMinimum === 'boolean') {
    if (out.exclusiveMinimum && typeof out.minimum === 'number') out.exclusiveMinimum = out.minimum
    else delete out.exclusiveMinimum
    if (typeof out.exclusiveMinimum === 'number') delete out.minimum
  }
  if ((node as Json).nullable !== true) return out
  if (typeof out.type === 'string') {
    out.type = [out.type, 'null']
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null]
    return out
  }
  return { anyOf: [out, { type: 'null' }] }
}

function operation(path: string, method: (typeof METHODS)[number]): Operation {
  const op = doc.paths[path]?.[method]
  if (!op) throw new Error(`openapi.yaml has no ${method.toUpperCase()} ${path}`)
  return op
}

/** A JSON pointer segment. */
const pointer = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1')

/**
 * The schema openapi.yaml gives the answer of `method path` with `status`, compiled by reference into the whole
 * document (so its $refs resolve); through components.responses when the answer is a shared one (errors).
 */
function answerSchema(path: string, method: (typeof METHODS)[number], status: string, type = 'application/json') {
  const response = operation(path, method).responses[status] as Json | undefined
  if (!response) throw new Error(`${method.toUpperCase()} ${path} declares no ${status}`)
  const shared = response.$ref as string | undefined
  const target = shared ? ((doc.components.responses as Json)[shared.split('/').at(-1)!] as Json) : response
  if (!(target.content as Json | undefined)?.[type]) throw new Error(`${method} ${path} ${status}: no ${type} schema`)
  const base = shared ? `${SPEC_ID}${shared}` : `${SPEC_ID}#/paths/${pointer(path)}/${method}/responses/${status}`
  return ajv.compile({ $ref: `${base}/content/${pointer(type)}/schema` })
}

/** The members of `a` that are not in `b`, sorted. */
const minus = (a: Iterable<string>, b: Iterable<string>) => {
  const without = new Set(b)
  return [...a].filter((x) => !without.has(x)).sort()
}

/** Fails with ajv's errors, readable, rather than a bare `false`. */
function expectValid(validator: ValidateFunction, value: unknown, what: string) {
  const ok = validator(value)
  expect(ok ? [] : validator.errors, `${what}: ${JSON.stringify(value).slice(0, 400)}`).toEqual([])
}

const openaiSchema = (name: string) => ajv.compile({ $ref: `${OPENAI_ID}#/components/schemas/${name}` })

const v1 = (path: string, init: RequestInit & { json?: unknown } = {}) =>
  fetch(`${stack.gateway.url}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${DEV_KEY}`,
      ...(init.json !== undefined && { 'content-type': 'application/json' }),
      ...(init.headers as Record<string, string>),
    },
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
  })
const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${stack.gateway.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
  })

/** A small fine-tuning dataset in OpenAI's chat format: `examples` lines, each a user question and its answer. */
const chatJsonl = (examples: number) =>
  Array.from({ length: examples }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: 'user', content: `What is ${i} plus ${i}?` },
        { role: 'assistant', content: `${i} plus ${i} is ${2 * i}.` },
      ],
    }),
  )
    .map((line) => `${line}\n`)
    .join('')

/** `POST /v1/files` with a fine-tuning dataset, as the openai client sends it (multipart/form-data). */
function uploadFile(text: string, filename: string, headers: Record<string, string> = {}) {
  const form = new FormData()
  form.append('purpose', 'fine-tune')
  form.append('file', new Blob([text], { type: 'application/jsonl' }), filename)
  return v1('/v1/files', { method: 'POST', body: form, headers })
}

/**
 * A file as OpenAI's schema would have it: the schema types `expires_at` and `status_details` as non-null, though
 * OpenAI's API answers null for them (and its SDKs type them optional and nullable), as this gateway does.
 */
const openaiFile = (file: Json) =>
  Object.fromEntries(
    Object.entries(file).filter(([k, v]) => !(v === null && (k === 'expires_at' || k === 'status_details'))),
  )

beforeAll(async () => {
  doc = (await parse(SPEC_PATH)) as unknown as Document
  resolved = (await dereference(structuredClone(doc) as never)) as unknown as Document
  ajv = new Ajv2020({ strict: false, allErrors: true })
  // Formats the two documents use that ajv does not define itself; only the shapes are under test.
  for (const format of ['date-time', 'unixtime', 'double', 'float', 'int64', 'binary', 'uri'])
    ajv.addFormat(format, true)
  ajv.addSchema({ $id: SPEC_ID, paths: doc.paths, components: doc.components })
  ajv.addSchema({ $id: OPENAI_ID, components: normalizeNullable(extract.components) as Json })
  stack = await startTestStack()
}, 120_000)

afterAll(async () => {
  await stack?.dispose()
})

describe('openapi.yaml', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await validate(SPEC_PATH)
    expect(result.valid ? [] : result.errors).toEqual([])
    expect(doc).toMatchObject({ openapi: expect.stringMatching(/^3\.1\./) })
  })

  it("describes exactly the running app's routes", () => {
    // Hono writes `:id` and regexes (`:id{.+}`); OpenAPI writes `{id}`.
    const honoPath = (p: string) => p.replace(/\{(\w+)\}/g, ':$1')
    const fromHono = (p: string) => p.replace(/:(\w+)(\{[^}]*\})?/g, ':$1')
    const documented = new Set<string>()
    const documentedPaths = new Set<string>()
    for (const [path, item] of Object.entries(doc.paths)) {
      documentedPaths.add(honoPath(path))
      for (const m of METHODS) if (item[m]) documented.add(`${m.toUpperCase()} ${honoPath(path)}`)
    }
    // The only routes not described as operations, each for its reason:
    // - middleware, registered by `app.use` under a wildcard (Hono lists `*` as `/*`): request ids, CORS (which
    //   answers the OPTIONS preflight itself, before authentication), API-key and admin-key authentication.
    //   Not endpoints.
    const MIDDLEWARE = new Set(['/*', '/v1/*', '/admin/*'])
    // - `app.all(path, methodNotAllowed(…))`: the 405 for a documented path asked with another method. It must
    //   stand beside a documented path (checked below); the document says so once, in info.description.
    const served = new Set<string>()
    const unexplained: string[] = []
    for (const route of stack.gateway.app.routes) {
      const path = fromHono(route.path)
      if (route.method === 'ALL') {
        if (MIDDLEWARE.has(path)) continue
        if (!documentedPaths.has(path)) unexplained.push(`ALL ${path} (a 405 handler for an undocumented path?)`)
        continue
      }
      served.add(`${route.method} ${path}`)
    }
    expect(unexplained).toEqual([])
    expect(minus(served, documented), 'served but not in openapi.yaml').toEqual([])
    expect(minus(documented, served), 'in openapi.yaml but not served').toEqual([])
    // The contract's extras (architecture.md): /metrics is another part's to mount, and must be here too.
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.yaml', '/docs', '/']) {
      expect(served.has(`GET ${path}`), `GET ${path} is served`).toBe(true)
    }
  })
})

/** The gateway's operations that OpenAI's spec also has, and OpenAI's name for each. */
const SHARED: ReadonlyArray<[ours: string, openai: string]> = [
  ['POST /v1/chat/completions', 'POST /chat/completions'],
  ['POST /v1/completions', 'POST /completions'],
  ['POST /v1/embeddings', 'POST /embeddings'],
  ['POST /v1/images/generations', 'POST /images/generations'],
  ['POST /v1/images/edits', 'POST /images/edits'],
  ['POST /v1/audio/speech', 'POST /audio/speech'],
  ['POST /v1/audio/transcriptions', 'POST /audio/transcriptions'],
  ['GET /v1/models', 'GET /models'],
  ['GET /v1/models/{id}', 'GET /models/{model}'],
  ['POST /v1/responses', 'POST /responses'],
  ['GET /v1/responses/{id}', 'GET /responses/{response_id}'],
  ['DELETE /v1/responses/{id}', 'DELETE /responses/{response_id}'],
  ['GET /v1/responses/{id}/input_items', 'GET /responses/{response_id}/input_items'],
  ['POST /v1/files', 'POST /files'],
  ['GET /v1/files', 'GET /files'],
  ['GET /v1/files/{id}', 'GET /files/{file_id}'],
  ['DELETE /v1/files/{id}', 'DELETE /files/{file_id}'],
  ['GET /v1/files/{id}/content', 'GET /files/{file_id}/content'],
  ['POST /v1/fine_tuning/jobs', 'POST /fine_tuning/jobs'],
  ['GET /v1/fine_tuning/jobs', 'GET /fine_tuning/jobs'],
  ['GET /v1/fine_tuning/jobs/{id}', 'GET /fine_tuning/jobs/{fine_tuning_job_id}'],
  ['GET /v1/fine_tuning/jobs/{id}/events', 'GET /fine_tuning/jobs/{fine_tuning_job_id}/events'],
  ['POST /v1/fine_tuning/jobs/{id}/cancel', 'POST /fine_tuning/jobs/{fine_tuning_job_id}/cancel'],
]

/** Fields the gateway requires beyond OpenAI: the model picks the providers, where OpenAI has a default. */
const REQUIRED_HERE: Record<string, string[]> = {
  'POST /v1/images/generations': ['model'],
  'POST /v1/images/edits': ['model'],
  'POST /v1/responses': ['model'],
}
/** Fields the gateway documents that OpenAI's request has not: 0G's and vLLM's, each said so in openapi.yaml. */
const EXTENSIONS: Record<string, string[]> = {
  'POST /v1/audio/speech': ['max_duration'],
  'POST /v1/audio/transcriptions': ['stream_include_usage'],
}
/** Fields the gateway reads or checks, which the document must name as OpenAI does. */
const KEY_FIELDS: Record<string, string[]> = {
  'POST /v1/chat/completions': [
    'model',
    'messages',
    'stream',
    'stream_options',
    'max_tokens',
    'max_completion_tokens',
    'n',
    'temperature',
    'top_p',
    'tools',
  ],
  'POST /v1/completions': ['model', 'prompt', 'stream', 'stream_options', 'max_tokens', 'n', 'logprobs', 'best_of'],
  'POST /v1/embeddings': ['model', 'input', 'encoding_format', 'dimensions'],
  'POST /v1/images/generations': ['model', 'prompt', 'n', 'response_format', 'size'],
  'POST /v1/images/edits': ['model', 'image', 'mask', 'prompt', 'response_format'],
  'POST /v1/audio/speech': ['model', 'input', 'voice', 'response_format', 'speed', 'stream_format', 'instructions'],
  'POST /v1/audio/transcriptions': ['file', 'model', 'response_format', 'language', 'prompt', 'temperature', 'stream'],
  'POST /v1/responses': [
    'model',
    'input',
    'instructions',
    'previous_response_id',
    'stream',
    'store',
    'max_output_tokens',
    'tools',
    'tool_choice',
    'text',
  ],
  'POST /v1/files': ['file', 'purpose'],
  'POST /v1/fine_tuning/jobs': [
    'model',
    'training_file',
    'hyperparameters',
    'method',
    'suffix',
    'seed',
    'metadata',
    'validation_file',
  ],
}

describe("the routes shared with OpenAI, against OpenAI's spec", () => {
  /** A request schema's field names and required fields, through allOf. */
  const fieldsOf = (schema: Json): { properties: Set<string>; required: Set<string> } => {
    const properties = new Set(Object.keys((schema.properties as Json | undefined) ?? {}))
    const required = new Set((schema.required as string[] | undefined) ?? [])
    for (const part of (schema.allOf as Json[] | undefined) ?? []) {
      const inner = fieldsOf(part)
      for (const p of inner.properties) properties.add(p)
      for (const r of inner.required) required.add(r)
    }
    return { properties, required }
  }

  it.each(SHARED)('%s holds the official field names (%s)', (ours, theirs) => {
    const official = extract.operations[theirs]
    expect(official, `${theirs} is in the extract`).toBeDefined()
    const [method, path] = ours.split(' ') as [string, string]
    const op = resolved.paths[path]?.[method.toLowerCase() as (typeof METHODS)[number]]
    expect(op, `${ours} is in openapi.yaml`).toBeDefined()
    if (!official?.request) {
      expect(op?.requestBody).toBeUndefined()
      return
    }
    const content = op?.requestBody?.content ?? {}
    expect(Object.keys(content)).toEqual([official.request.contentType])
    const mine = fieldsOf(content[official.request.contentType]!.schema)
    const theirsFields = new Set(official.request.properties)
    const theirsRequired = new Set(official.request.required)
    expect(minus(theirsRequired, mine.required), 'required by OpenAI, not here').toEqual([])
    expect(minus(mine.required, theirsRequired)).toEqual((REQUIRED_HERE[ours] ?? []).sort())
    const extensions = new Set(EXTENSIONS[ours] ?? [])
    expect(minus(minus(mine.properties, theirsFields), extensions), 'not an OpenAI field').toEqual([])
    for (const name of extensions) expect(mine.properties.has(name) && !theirsFields.has(name), name).toBe(true)
    for (const name of KEY_FIELDS[ours] ?? []) {
      expect(theirsFields.has(name), `${name} is OpenAI's`).toBe(true)
      expect(mine.properties.has(name), `${name} is documented`).toBe(true)
    }
  })
})

describe("the dev stack's answers, against openapi.yaml's schemas", () => {
  it('chat completion: the body, usage.cost and the x-zg-* headers; and its receipt', async () => {
    const res = await v1('/v1/chat/completions', {
      method: 'POST',
      json: { model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'Hello, 0G!' }] },
    })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { usage: { cost: number } }
    expectValid(answerSchema('/v1/chat/completions', 'post', '200'), body, 'chat completion')
    expectValid(openaiSchema('CreateChatCompletionResponse'), body, "chat completion (OpenAI's schema)")
    expect(typeof body.usage.cost).toBe('number')
    const headers = operation('/v1/chat/completions', 'post').responses['200']!.headers!
    for (const name of Object.keys(headers)) {
      const value = res.headers.get(name)
      expect(value, name).not.toBeNull()
      const schema = (
        resolved.paths['/v1/chat/completions']!.post!.responses['200']!.headers![name] as { schema: Json }
      ).schema
      expectValid(ajv.compile(schema), value, `header ${name}`)
    }
    const receipt = await v1(res.headers.get('x-zg-receipt')!)
    expect(receipt.status).toBe(200)
    expectValid(answerSchema('/v1/receipts/{id}', 'get', '200'), await receipt.json(), 'receipt')
  })

  it('a chat completion stream: every chunk, and the usage chunk with its cost', async () => {
    const res = await v1('/v1/chat/completions', {
      method: 'POST',
      json: {
        model: DEV_CHAT_MODEL,
        messages: [{ role: 'user', content: 'Hi' }],
        stream: true,
        stream_options: { include_usage: true },
      },
    })
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = (await res.text())
      .split('\n\n')
      .map((e) =>
        e
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n'),
      )
      .filter(Boolean)
    expect(events.at(-1)).toBe('[DONE]')
    const chunk = ajv.compile({ $ref: `${SPEC_ID}#/components/schemas/CreateChatCompletionStreamResponse` })
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Json)
    for (const c of chunks) expectValid(chunk, c, 'chunk')
    expect(chunks.at(-1)).toMatchObject({ usage: { cost: expect.any(Number) } })
  })

  it('completion, embeddings (float and base64), models', async () => {
    const completion = await v1('/v1/completions', { method: 'POST', json: { model: DEV_CHAT_MODEL, prompt: 'Once' } })
    const completionBody = await completion.json()
    expectValid(answerSchema('/v1/completions', 'post', '200'), completionBody, 'completion')
    expectValid(openaiSchema('CreateCompletionResponse'), completionBody, "completion (OpenAI's schema)")

    for (const encoding_format of ['float', 'base64']) {
      const res = await v1('/v1/embeddings', {
        method: 'POST',
        json: { model: DEV_EMBEDDING_MODEL, input: ['a', 'b'], encoding_format },
      })
      const body = await res.json()
      expectValid(answerSchema('/v1/embeddings', 'post', '200'), body, `embeddings (${encoding_format})`)
      // OpenAI's schema types `embedding` as floats only, though its API answers base64 text when asked.
      if (encoding_format === 'float') expectValid(openaiSchema('CreateEmbeddingResponse'), body, "OpenAI's schema")
    }

    const list = await (await v1('/v1/models')).json()
    expectValid(answerSchema('/v1/models', 'get', '200'), list, 'models')
    expectValid(openaiSchema('ListModelsResponse'), list, "models (OpenAI's schema)")
    const model = await (await v1(`/v1/models/${DEV_CHAT_MODEL}`)).json()
    expectValid(answerSchema('/v1/models/{id}', 'get', '200'), model, 'model')
    expectValid(openaiSchema('Model'), model, "model (OpenAI's schema)")
  })

  it("the Responses API's create, retrieve, input items and delete", async () => {
    const created = (await (
      await v1('/v1/responses', { method: 'POST', json: { model: DEV_CHAT_MODEL, input: 'Hello' } })
    ).json()) as { id: string }
    expectValid(answerSchema('/v1/responses', 'post', '200'), created, 'response')
    const got = await (await v1(`/v1/responses/${created.id}`)).json()
    expectValid(answerSchema('/v1/responses/{id}', 'get', '200'), got, 'stored response')
    const items = await (await v1(`/v1/responses/${created.id}/input_items`)).json()
    expectValid(answerSchema('/v1/responses/{id}/input_items', 'get', '200'), items, 'input items')
    const deleted = await (await v1(`/v1/responses/${created.id}`, { method: 'DELETE' })).json()
    expectValid(answerSchema('/v1/responses/{id}', 'delete', '200'), deleted, 'deleted')
  })

  it("files: upload, list, retrieve, content and delete; a malformed dataset's 400 names its lines", async () => {
    const text = chatJsonl(10)
    const uploaded = await uploadFile(text, 'openapi.jsonl')
    expect(uploaded.status).toBe(200)
    const file = (await uploaded.json()) as { id: string; bytes: number }
    expectValid(answerSchema('/v1/files', 'post', '200'), file, 'file')
    expectValid(openaiSchema('OpenAIFile'), openaiFile(file), "file (OpenAI's schema)")
    expect(file.bytes).toBe(Buffer.byteLength(text))

    for (const query of ['', '?purpose=fine-tune&limit=1&order=asc']) {
      const list = (await (await v1(`/v1/files${query}`)).json()) as { data: Json[] }
      expectValid(answerSchema('/v1/files', 'get', '200'), list, `files${query}`)
      expectValid(
        openaiSchema('ListFilesResponse'),
        { ...list, data: list.data.map(openaiFile) },
        `files${query} (OpenAI's schema)`,
      )
      expect(list.data.map((f) => f.id)).toContain(file.id)
    }
    const got = await (await v1(`/v1/files/${file.id}`)).json()
    expectValid(answerSchema('/v1/files/{id}', 'get', '200'), got, 'retrieved file')
    const content = await v1(`/v1/files/${file.id}/content`)
    expect(content.status).toBe(200)
    expect(content.headers.get('content-type')).toMatch(/^application\/octet-stream/)
    expect(await content.text()).toBe(text)

    const deleted = await (await v1(`/v1/files/${file.id}`, { method: 'DELETE' })).json()
    expectValid(answerSchema('/v1/files/{id}', 'delete', '200'), deleted, 'deleted file')
    expectValid(openaiSchema('DeleteFileResponse'), deleted, "deleted file (OpenAI's schema)")
    const gone = await v1(`/v1/files/${file.id}`)
    expect(gone.status).toBe(404)
    expectValid(answerSchema('/v1/files/{id}', 'get', '404'), await gone.json(), 'a deleted file')

    // Line 3 is not JSON and line 5 has no assistant message.
    const lines = chatJsonl(12).trimEnd().split('\n')
    lines[2] = '{"messages": [ not json'
    lines[4] = JSON.stringify({ messages: [{ role: 'user', content: 'Hello?' }] })
    const malformed = await uploadFile(`${lines.join('\n')}\n`, 'malformed.jsonl')
    expect(malformed.status).toBe(400)
    const refusal = (await malformed.json()) as { error: { message: string; param: string; code: string } }
    expectValid(answerSchema('/v1/files', 'post', '400'), refusal, 'a malformed dataset')
    expectValid(openaiSchema('ErrorResponse'), refusal, "a malformed dataset (OpenAI's schema)")
    expect(refusal.error).toMatchObject({ param: 'file', code: 'invalid_file_format' })
    expect(refusal.error.message).toMatch(/line 3\b[^;]*not valid JSON/)
    expect(refusal.error.message).toMatch(/line 5\b[^;]*assistant/)
  })

  it('fine-tuning: a job on the dev chat model, trained to success; its events, the list, the tuned model', async () => {
    const file = (await (await uploadFile(chatJsonl(10), 'train.jsonl')).json()) as { id: string }
    const res = await v1('/v1/fine_tuning/jobs', {
      method: 'POST',
      json: {
        model: DEV_CHAT_MODEL,
        training_file: file.id,
        suffix: 'openapi',
        seed: 7,
        metadata: { test: 'openapi' },
        method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 1 } } },
      },
    })
    expect(res.status).toBe(200)
    const created = (await res.json()) as { id: string }
    const job = answerSchema('/v1/fine_tuning/jobs', 'post', '200')
    expectValid(job, created, 'created job')
    expectValid(openaiSchema('FineTuningJob'), created, "created job (OpenAI's schema)")

    const retrieved = answerSchema('/v1/fine_tuning/jobs/{id}', 'get', '200')
    const events = answerSchema('/v1/fine_tuning/jobs/{id}/events', 'get', '200')
    const checkEvents = async (what: string) => {
      const page = (await (await v1(`/v1/fine_tuning/jobs/${created.id}/events?limit=1000`)).json()) as {
        data: Array<{ type: string }>
      }
      expectValid(events, page, what)
      expectValid(openaiSchema('ListFineTuningJobEventsResponse'), page, `${what} (OpenAI's schema)`)
      return page
    }
    // Every answer on the way, until the job has finished (the dev trainer takes a second or two).
    const deadline = Date.now() + 60_000
    type Job = { status: string; fine_tuned_model: string | null; result_files: string[]; zg: Json }
    let current: Job
    for (;;) {
      current = (await (await v1(`/v1/fine_tuning/jobs/${created.id}`)).json()) as Job
      expectValid(retrieved, current, `job (${current.status})`)
      expectValid(openaiSchema('FineTuningJob'), current, `job (${current.status}, OpenAI's schema)`)
      if (['succeeded', 'failed', 'cancelled'].includes(current.status)) break
      await checkEvents(`events (${current.status})`)
      expect(Date.now(), `job still ${current.status}`).toBeLessThan(deadline)
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(current).toMatchObject({ status: 'succeeded', zg: { phase: 'done', fee: expect.stringMatching(/^\d+$/) } })
    const story = await checkEvents('events (succeeded)')
    expect(story.data.some((e) => e.type === 'metrics')).toBe(true)

    // The trained adapter, kept as the job's result file.
    expect(current.result_files).toHaveLength(1)
    const result = (await (await v1(`/v1/files/${current.result_files[0]}`)).json()) as Json
    expectValid(answerSchema('/v1/files/{id}', 'get', '200'), result, 'result file')
    expectValid(openaiSchema('OpenAIFile'), openaiFile(result), "result file (OpenAI's schema)")
    expect(result).toMatchObject({ purpose: 'fine-tune-results' })
    const adapter = await v1(`/v1/files/${current.result_files[0]}/content`)
    expect(adapter.headers.get('content-type')).toMatch(/^application\/octet-stream/)
    expect((await adapter.arrayBuffer()).byteLength).toBe(result.bytes)

    const list = await (await v1('/v1/fine_tuning/jobs?limit=5')).json()
    expectValid(answerSchema('/v1/fine_tuning/jobs', 'get', '200'), list, 'jobs')
    expectValid(openaiSchema('ListPaginatedFineTuningJobsResponse'), list, "jobs (OpenAI's schema)")
    // A finished job is answered as it is.
    const cancelled = await (await v1(`/v1/fine_tuning/jobs/${created.id}/cancel`, { method: 'POST' })).json()
    expectValid(answerSchema('/v1/fine_tuning/jobs/{id}/cancel', 'post', '200'), cancelled, 'cancel')
    expect(cancelled).toMatchObject({ status: 'succeeded' })

    // The tuned model, in /v1/models beside the network's, and on its own.
    const models = (await (await v1('/v1/models')).json()) as { data: Json[] }
    expectValid(answerSchema('/v1/models', 'get', '200'), models, 'models with a tuned one')
    expectValid(openaiSchema('ListModelsResponse'), models, "models with a tuned one (OpenAI's schema)")
    const tuned = models.data.find((m) => m.id === current.fine_tuned_model)
    expect(tuned).toMatchObject({ owned_by: 'user', parent: DEV_CHAT_MODEL, fine_tuning_job: created.id })
    const model = await (await v1(`/v1/models/${encodeURIComponent(current.fine_tuned_model!)}`)).json()
    expectValid(answerSchema('/v1/models/{id}', 'get', '200'), model, 'tuned model')
    expectValid(openaiSchema('Model'), model, "tuned model (OpenAI's schema)")
  }, 90_000)

  it("fine-tuning's refusals: an unknown file, a model no provider fine-tunes, an unknown job, a key's budget", async () => {
    const file = (await (await uploadFile(chatJsonl(10), 'refusals.jsonl')).json()) as { id: string }
    const cases: Array<[Response, string, string, (typeof METHODS)[number], string, string]> = [
      [
        await v1('/v1/fine_tuning/jobs', {
          method: 'POST',
          json: { model: DEV_CHAT_MODEL, training_file: 'file-nosuchfile' },
        }),
        '400',
        '/v1/fine_tuning/jobs',
        'post',
        'invalid_training_file',
        'an unknown file',
      ],
      [
        await v1('/v1/fine_tuning/jobs', {
          method: 'POST',
          json: { model: DEV_EMBEDDING_MODEL, training_file: file.id },
        }),
        '400',
        '/v1/fine_tuning/jobs',
        'post',
        'model_not_available',
        'a model no provider fine-tunes',
      ],
      [
        await v1('/v1/fine_tuning/jobs/ftjob-nosuchjob'),
        '404',
        '/v1/fine_tuning/jobs/{id}',
        'get',
        'fine_tuning_job_not_found',
        'an unknown job',
      ],
      [
        await v1('/v1/fine_tuning/jobs/ftjob-nosuchjob/events'),
        '404',
        '/v1/fine_tuning/jobs/{id}/events',
        'get',
        'fine_tuning_job_not_found',
        "an unknown job's events",
      ],
      [
        await v1('/v1/fine_tuning/jobs/ftjob-nosuchjob/cancel', { method: 'POST' }),
        '404',
        '/v1/fine_tuning/jobs/{id}/cancel',
        'post',
        'fine_tuning_job_not_found',
        'cancelling an unknown job',
      ],
    ]

    // A key whose budget (10^-9 0G) cannot hold a job's fee.
    const created = await admin('/admin/keys', {
      method: 'POST',
      body: JSON.stringify({ name: 'openapi-ft', budget: '0.000000001' }),
    })
    const key = (await created.json()) as { id: string; key: string }
    const asKey = { authorization: `Bearer ${key.key}` }
    try {
      const own = (await (await uploadFile(chatJsonl(10), 'budget.jsonl', asKey)).json()) as { id: string }
      cases.push([
        await v1('/v1/fine_tuning/jobs', {
          method: 'POST',
          headers: asKey,
          json: { model: DEV_CHAT_MODEL, training_file: own.id },
        }),
        '429',
        '/v1/fine_tuning/jobs',
        'post',
        'insufficient_quota',
        "over the key's budget",
      ])
      // Another key's file is as absent as a missing one.
      cases.push([
        await v1(`/v1/files/${own.id}`),
        '404',
        '/v1/files/{id}',
        'get',
        'file_not_found',
        "another key's file",
      ])
    } finally {
      await admin(`/admin/keys/${key.id}`, { method: 'DELETE' })
    }

    for (const [res, status, path, method, code, what] of cases) {
      expect(String(res.status), what).toBe(status)
      const body = (await res.json()) as { error: { code: string } }
      expectValid(answerSchema(path, method, status), body, what)
      expectValid(openaiSchema('ErrorResponse'), body, `${what} (OpenAI's schema)`)
      expect(body.error.code, what).toBe(code)
      if (status === '429') expect(res.headers.get('x-should-retry'), what).toBe('false')
    }
  })

  it('errors: a missing field, no key, an unknown model, a bad header, a wrong method', async () => {
    const cases: Array<[Response, string, string, (typeof METHODS)[number], string]> = [
      [
        await v1('/v1/chat/completions', { method: 'POST', json: { messages: [{ role: 'user', content: 'x' }] } }),
        '400',
        '/v1/chat/completions',
        'post',
        'missing model',
      ],
      [await fetch(`${stack.gateway.url}/v1/models`), '401', '/v1/models', 'get', 'no key'],
      [await v1('/v1/models/no-such-model'), '404', '/v1/models/{id}', 'get', 'unknown model'],
      [
        await v1('/v1/chat/completions', {
          method: 'POST',
          headers: { 'x-zg-min-verification': 'L9' },
          json: { model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'x' }] },
        }),
        '400',
        '/v1/chat/completions',
        'post',
        'bad header',
      ],
    ]
    for (const [res, status, path, method, what] of cases) {
      expect(String(res.status), what).toBe(status)
      expect(res.headers.get('x-request-id'), what).toBeTruthy()
      const body = await res.json()
      expectValid(answerSchema(path, method, status), body, what)
      expectValid(openaiSchema('ErrorResponse'), body, `${what} (OpenAI's schema)`)
    }
    const wrongMethod = await v1('/v1/chat/completions', { method: 'GET' })
    expect(wrongMethod.status).toBe(405)
    expectValid(openaiSchema('ErrorResponse'), await wrongMethod.json(), '405')
  })

  it('health, readiness and the admin API', async () => {
    expectValid(
      answerSchema('/healthz', 'get', '200'),
      await (await fetch(`${stack.gateway.url}/healthz`)).json(),
      'healthz',
    )
    expectValid(
      answerSchema('/readyz', 'get', '200'),
      await (await fetch(`${stack.gateway.url}/readyz`)).json(),
      'readyz',
    )

    const created = await admin('/admin/keys', {
      method: 'POST',
      body: JSON.stringify({
        name: 'openapi',
        budget: '1',
        budget_period: 'daily',
        rpm: 60,
        routing: { sort: 'price' },
      }),
    })
    expect(created.status).toBe(201)
    const key = (await created.json()) as { id: string }
    expectValid(answerSchema('/admin/keys', 'post', '201'), key, 'created key')
    for (const [path, template] of [
      ['/admin/keys', '/admin/keys'],
      [`/admin/keys/${key.id}`, '/admin/keys/{id}'],
      ['/admin/usage?by=all', '/admin/usage'],
      ['/admin/funding', '/admin/funding'],
      ['/admin/providers', '/admin/providers'],
    ] as const) {
      const res = await admin(path)
      expect(res.status, path).toBe(200)
      expectValid(answerSchema(template, 'get', '200'), await res.json(), path)
    }
    const rotated = await admin(`/admin/keys/${key.id}/rotate`, { method: 'POST' })
    expectValid(answerSchema('/admin/keys/{id}/rotate', 'post', '200'), await rotated.json(), 'rotated key')
    const revoked = await admin(`/admin/keys/${key.id}`, { method: 'DELETE' })
    expectValid(answerSchema('/admin/keys/{id}', 'delete', '200'), await revoked.json(), 'revoked key')
    const refused = await fetch(`${stack.gateway.url}/admin/keys`, { headers: { authorization: `Bearer ${DEV_KEY}` } })
    expect(refused.status).toBe(401)
    expectValid(answerSchema('/admin/keys', 'get', '401'), await refused.json(), 'an API key on /admin')
  })
})

describe('/openapi.yaml and the reference page', () => {
  it('serves openapi.yaml as application/yaml, byte for byte', async () => {
    const res = await fetch(`${stack.gateway.url}/openapi.yaml`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/yaml/)
    expect(await res.text()).toBe(readFileSync(SPEC_PATH, 'utf8'))
  })

  it('serves the reference page with same-origin assets only, under a CSP that admits nothing else', async () => {
    const res = await fetch(`${stack.gateway.url}/docs`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).not.toMatch(/https?:|unsafe-inline|unsafe-eval|\*/)
    const html = await res.text()
    const all = [...html.matchAll(/<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)
    expect(all.filter((src) => /^[a-z]+:/i.test(src) && !src.startsWith('data:'))).toEqual([])
    // The script, the stylesheet and the starter, each from this origin's /docs/.
    const sources = all.filter((src) => !src.startsWith('data:'))
    expect(sources).toHaveLength(3)
    for (const src of sources) {
      expect(src, src).toMatch(/^\/(?!\/)/)
      const asset = await fetch(new URL(src, stack.gateway.url))
      expect(asset.status, src).toBe(200)
      expect(asset.headers.get('content-type'), src).toMatch(/^text\/(javascript|css)/)
    }
    const unknown = await fetch(`${stack.gateway.url}/docs/index.html`)
    expect(unknown.status).toBe(404)
    expectValid(answerSchema('/docs/{file}', 'get', '404'), await unknown.json(), 'an unknown asset')
    // No inline script: the CSP would refuse it, and it is where a remote loader would hide.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
  })

  const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path))
  it.runIf(CHROMIUM)(
    'renders the document in a browser, asking nothing of any other origin',
    async () => {
      let browser: Browser | undefined
      try {
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          headless: true,
          args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
        })
        const page = await browser.newPage()
        const requested: string[] = []
        const problems: string[] = []
        page.on('request', (req) => requested.push(req.url()))
        page.on('console', (m) => m.type() === 'error' && problems.push(`${m.text()} ${m.location().url}`))
        page.on('pageerror', (err) => problems.push(err.message))
        await page.goto(`${stack.gateway.url}/docs`)
        await page.locator('.swagger-ui .info .title').waitFor({ timeout: 20_000 })
        expect(await page.locator('.swagger-ui .info .title').textContent()).toContain('zg-gateway')
        // Operations are listed: the document was read and parsed in the page.
        await page.locator('.opblock-summary-path[data-path="/v1/chat/completions"]').waitFor({ timeout: 10_000 })
        const origin = new URL(stack.gateway.url).origin
        expect(requested.filter((url) => !url.startsWith(origin) && !url.startsWith('data:'))).toEqual([])
        expect(problems).toEqual([])
      } finally {
        await browser?.close()
      }
    },
    60_000,
  )
})
