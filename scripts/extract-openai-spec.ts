/**
 * `node scripts/extract-openai-spec.ts [openapi.json]`: writes test/fixtures/openai-openapi/extract.json, the small
 * part of OpenAI's OpenAPI spec (MIT, github.com/openai/openai-openapi) that test/openapi.test.ts checks the
 * gateway's openapi.yaml and answers against. The test must pass on a fresh clone, where the 3.4 MB spec beside the
 * project (../shared/openai-openapi) may be absent, so only this extract is committed.
 *
 * For each operation the gateway shares with OpenAI: the request schema's top-level field names and required
 * fields, with `allOf` flattened (the request schemas are built from shared parts). For the answers the test
 * validates: those component schemas and every schema they reach through `$ref`, byte for byte as OpenAI wrote
 * them (the test normalises OpenAPI 3.0's `nullable` itself).
 */

import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

type Schema = {
  $ref?: string
  allOf?: Schema[]
  properties?: Record<string, unknown>
  required?: string[]
}
type Operation = {
  operationId: string
  requestBody?: { content: Record<string, { schema: Schema }> }
}
type Spec = {
  openapi: string
  info: { version: string }
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Schema> }
}

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const source = process.argv[2] ?? join(root, '..', 'shared', 'openai-openapi', 'openapi.json')
const out = join(root, 'test', 'fixtures', 'openai-openapi', 'extract.json')

/** The operations the gateway serves under /v1, as OpenAI's spec names their paths. */
const OPERATIONS = [
  ['post', '/chat/completions'],
  ['post', '/completions'],
  ['post', '/embeddings'],
  ['post', '/images/generations'],
  ['post', '/images/edits'],
  ['post', '/audio/speech'],
  ['post', '/audio/transcriptions'],
  ['get', '/models'],
  ['get', '/models/{model}'],
  ['post', '/responses'],
  ['get', '/responses/{response_id}'],
  ['delete', '/responses/{response_id}'],
  ['get', '/responses/{response_id}/input_items'],
  ['post', '/files'],
  ['get', '/files'],
  ['get', '/files/{file_id}'],
  ['delete', '/files/{file_id}'],
  ['get', '/files/{file_id}/content'],
  ['post', '/fine_tuning/jobs'],
  ['get', '/fine_tuning/jobs'],
  ['get', '/fine_tuning/jobs/{fine_tuning_job_id}'],
  ['get', '/fine_tuning/jobs/{fine_tuning_job_id}/events'],
  ['post', '/fine_tuning/jobs/{fine_tuning_job_id}/cancel'],
] as const

/** The answers test/openapi.test.ts validates the gateway's real responses against. */
const RESPONSE_SCHEMAS = [
  'CreateChatCompletionResponse',
  'CreateCompletionResponse',
  'CreateEmbeddingResponse',
  'ListModelsResponse',
  'Model',
  'ErrorResponse',
  'OpenAIFile',
  'ListFilesResponse',
  'DeleteFileResponse',
  'FineTuningJob',
  'ListPaginatedFineTuningJobsResponse',
  'ListFineTuningJobEventsResponse',
]

const spec = JSON.parse(readFileSync(source, 'utf8')) as Spec

const refName = (ref: string) => ref.replace('#/components/schemas/', '')
const resolve = (schema: Schema): Schema =>
  schema.$ref ? resolve(spec.components.schemas[refName(schema.$ref)] as Schema) : schema

/** A request schema's field names and required fields, through its `allOf` parts. */
function fieldsOf(schema: Schema): { properties: Set<string>; required: Set<string> } {
  const s = resolve(schema)
  const properties = new Set(Object.keys(s.properties ?? {}))
  const required = new Set(s.required ?? [])
  for (const part of s.allOf ?? []) {
    const inner = fieldsOf(part)
    for (const p of inner.properties) properties.add(p)
    for (const r of inner.required) required.add(r)
  }
  return { properties, required }
}

const operations: Record<string, unknown> = {}
for (const [method, path] of OPERATIONS) {
  const op = spec.paths[path]?.[method]
  if (!op) throw new Error(`${method.toUpperCase()} ${path} is not in ${source}`)
  const entry: Record<string, unknown> = { operationId: op.operationId }
  // Uploads list multipart/form-data first; OpenAI also takes JSON for edits, which the gateway does not.
  const [contentType, media] = Object.entries(op.requestBody?.content ?? {})[0] ?? []
  if (contentType && media) {
    const { properties, required } = fieldsOf(media.schema)
    entry.request = {
      contentType,
      schema: media.schema.$ref ? refName(media.schema.$ref) : null,
      required: [...required].sort(),
      properties: [...properties].sort(),
    }
  }
  operations[`${method.toUpperCase()} ${path}`] = entry
}

/** Every component schema `names` reach through `$ref`, in name order. */
function closure(names: readonly string[]): Record<string, unknown> {
  const seen = new Set<string>()
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return
    if (Array.isArray(node)) {
      for (const item of node) visit(item)
      return
    }
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') add(refName(value))
      else visit(value)
    }
  }
  const add = (name: string) => {
    if (seen.has(name)) return
    const schema = spec.components.schemas[name]
    if (!schema) throw new Error(`no component schema ${name}`)
    seen.add(name)
    visit(schema)
  }
  names.forEach(add)
  return Object.fromEntries([...seen].sort().map((name) => [name, spec.components.schemas[name]]))
}

const extract = {
  source: {
    repository: 'https://github.com/openai/openai-openapi',
    file: 'openapi.json',
    openapi: spec.openapi,
    version: spec.info.version,
    license: 'MIT, Copyright (c) OpenAI (see LICENSE beside this file)',
  },
  operations,
  components: { schemas: closure(RESPONSE_SCHEMAS) },
}
writeFileSync(out, `${JSON.stringify(extract, null, 2)}\n`)
// In the layout `npm run lint` checks, so that running the script again changes nothing.
execFileSync(join(root, 'node_modules', '.bin', 'biome'), ['format', '--write', out], { stdio: 'ignore' })
console.log(`wrote ${out} (${Object.keys(extract.components.schemas).length} schemas)`)
