import { randomBytes } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { type Context, Hono } from 'hono'
import { checkChatJsonl } from '../../fine-tuning/dataset.ts'
import {
  type Hyperparameters,
  hyperparametersInputSchema,
  resolveHyperparameters,
} from '../../fine-tuning/hyperparameters.ts'
import { countDatasetTokens } from '../../fine-tuning/tokens.ts'
import type { ApiKeyEnv } from '../http/auth.ts'
import { readJsonBody } from '../http/body.ts'
import { methodNotAllowed } from '../http/not-found.ts'
import { badRequest, GatewayError, notFound } from '../http/openai-error.ts'
import { readFileForm } from './file-form.ts'
import type { FineTuning } from './fine-tuning.ts'
import { eventObject, fileObject, jobObject, listObject } from './objects.ts'
import { JobFailure } from './runner.ts'

const FILE_PURPOSE = 'fine-tune'
/** OpenAI allows up to 64 characters in a suffix; it becomes part of a model name, so a plain alphabet. */
const SUFFIX = /^[A-Za-z0-9_-]{1,64}$/

function limitOf(c: Context, max: number, fallback: number): number {
  const raw = c.req.query('limit')
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw badRequest(`limit must be a whole number from 1 to ${max}`, 'limit')
  return n
}

const fileNotFound = (id: string) => notFound(`No such File object: ${id}`, 'file_not_found')
const jobNotFound = (id: string) => notFound(`No fine-tuning job found with id ${id}`, 'fine_tuning_job_not_found')

/**
 * OpenAI's Files (for `purpose: fine-tune`) and fine-tuning jobs API over 0G fine-tuning providers. Everything is
 * the calling key's own: another key's file or job answers 404 like a missing one.
 */
export function fineTuningRoutes(ft: FineTuning): Hono<ApiKeyEnv> {
  const app = new Hono<ApiKeyEnv>()
  const keyOf = (c: Context<ApiKeyEnv>) => c.get('apiKey').id

  app.post('/v1/files', async (c) => {
    const declared = Number(c.req.header('content-length') ?? 0)
    if (declared > ft.fileLimit + 64 * 1024) throw tooLarge(ft.fileLimit)
    if (!c.req.raw.body) throw badRequest('You must provide a `file` part.', 'file', 'missing_required_parameter')
    const id = `file-${randomBytes(12).toString('hex')}`
    const path = join(ft.uploadsDir, `${id}.upload`)
    let form: Awaited<ReturnType<typeof readFileForm>>
    try {
      form = await readFileForm(c.req.raw.body, c.req.header('content-type') ?? '', path, ft.fileLimit)
    } catch (err) {
      if (err instanceof GatewayError && err.status === 413) throw tooLarge(ft.fileLimit)
      throw err
    }
    try {
      if (form.purpose !== FILE_PURPOSE) {
        throw badRequest(
          form.purpose === undefined
            ? 'You must provide a `purpose`: this gateway keeps files for fine-tuning, `purpose: fine-tune`.'
            : `Invalid purpose ${JSON.stringify(form.purpose)}: this gateway keeps files for fine-tuning only (\`fine-tune\`).`,
          'purpose',
          form.purpose === undefined ? 'missing_required_parameter' : 'invalid_value',
        )
      }
      const content = await readFile(path)
      const text = content.toString('utf8')
      const check = checkChatJsonl(text)
      if (check.issues.length) {
        // The checker's messages name their line already (line 0 is the file as a whole).
        const shown = check.issues.slice(0, 10).map((i) => i.message)
        const more = check.issues.length > shown.length ? ` (and ${check.issues.length - shown.length} more)` : ''
        throw badRequest(
          `The file is not a valid fine-tuning dataset in OpenAI's chat format. ${shown.join('; ')}${more}`,
          'file',
          'invalid_file_format',
        )
      }
      const record = {
        id,
        apiKeyId: keyOf(c),
        purpose: FILE_PURPOSE,
        filename: form.filename,
        bytes: form.bytes,
        createdAt: Math.floor(Date.now() / 1000),
        examples: check.examples,
        tokens: countDatasetTokens(text),
      }
      await ft.records.addFile(record, content)
      return c.json(fileObject(record))
    } finally {
      await rm(path, { force: true })
    }
  })
  app.get('/v1/files', async (c) => {
    const order = c.req.query('order') ?? 'desc'
    if (order !== 'asc' && order !== 'desc') throw badRequest('order must be asc or desc', 'order')
    const page = await ft.records.files(keyOf(c), {
      purpose: c.req.query('purpose'),
      limit: limitOf(c, 10_000, 10_000),
      after: c.req.query('after'),
      order,
    })
    return c.json(listObject(page, fileObject))
  })
  app.all('/v1/files', methodNotAllowed(['GET', 'POST']))
  app.get('/v1/files/:id', async (c) => {
    const file = await ft.records.file(c.req.param('id'), keyOf(c))
    if (!file) throw fileNotFound(c.req.param('id'))
    return c.json(fileObject(file))
  })
  app.delete('/v1/files/:id', async (c) => {
    const id = c.req.param('id')
    if (!(await ft.records.deleteFile(id, keyOf(c)))) throw fileNotFound(id)
    return c.json({ id, object: 'file', deleted: true })
  })
  app.all('/v1/files/:id', methodNotAllowed(['GET', 'DELETE']))
  app.get('/v1/files/:id/content', async (c) => {
    const id = c.req.param('id')
    const content = await ft.records.fileContent(id, keyOf(c))
    if (!content) throw fileNotFound(id)
    return c.body(Buffer.from(content), 200, { 'content-type': 'application/octet-stream' })
  })
  app.all('/v1/files/:id/content', methodNotAllowed(['GET']))

  app.post('/v1/fine_tuning/jobs', async (c) => {
    const { json } = await readJsonBody(c, { limit: 1024 * 1024 })
    const policy = c.get('apiKey').policy
    const job = await ft.createJob(keyOf(c), jobRequestOf(json), policy !== undefined && policy.budget !== null)
    return c.json(jobObject(job))
  })
  app.get('/v1/fine_tuning/jobs', async (c) => {
    const page = await ft.records.jobs(keyOf(c), { limit: limitOf(c, 100, 20), after: c.req.query('after') })
    return c.json(listObject(page, jobObject))
  })
  app.all('/v1/fine_tuning/jobs', methodNotAllowed(['GET', 'POST']))
  app.get('/v1/fine_tuning/jobs/:id', async (c) => {
    const job = await ft.records.job(c.req.param('id'), keyOf(c))
    if (!job) throw jobNotFound(c.req.param('id'))
    return c.json(jobObject(job))
  })
  app.all('/v1/fine_tuning/jobs/:id', methodNotAllowed(['GET']))
  app.get('/v1/fine_tuning/jobs/:id/events', async (c) => {
    const job = await ft.records.job(c.req.param('id'), keyOf(c))
    if (!job) throw jobNotFound(c.req.param('id'))
    const page = await ft.records.events(job.id, { limit: limitOf(c, 1000, 20), after: c.req.query('after') })
    return c.json(listObject(page, eventObject))
  })
  app.all('/v1/fine_tuning/jobs/:id/events', methodNotAllowed(['GET']))
  app.post('/v1/fine_tuning/jobs/:id/cancel', async (c) => {
    const job = await ft.records.job(c.req.param('id'), keyOf(c))
    if (!job) throw jobNotFound(c.req.param('id'))
    try {
      return c.json(jobObject(await ft.runner.cancel(job)))
    } catch (err) {
      if (err instanceof JobFailure) throw badRequest(err.message, null, err.code)
      throw err
    }
  })
  app.all('/v1/fine_tuning/jobs/:id/cancel', methodNotAllowed(['POST']))
  return app
}

function tooLarge(limit: number): GatewayError {
  return new GatewayError(413, `The file is larger than the limit of ${limit} bytes for fine-tuning datasets.`, {
    code: 'file_too_large',
    param: 'file',
  })
}

export type JobRequest = {
  model: string
  trainingFile: string
  hyperparameters: Hyperparameters
  suffix: string | null
  seed: number
  metadata: Record<string, string> | null
}

/** `POST /v1/fine_tuning/jobs`' body, checked: OpenAI's fields, hyperparameters top-level or under `method`. */
function jobRequestOf(json: Record<string, unknown>): JobRequest {
  const { model, training_file, suffix, seed, metadata, validation_file } = json
  if (typeof model !== 'string' || !model)
    throw badRequest('You must provide a model parameter', 'model', 'missing_required_parameter')
  if (typeof training_file !== 'string' || !training_file)
    throw badRequest('You must provide a training_file parameter', 'training_file', 'missing_required_parameter')
  if (validation_file !== undefined && validation_file !== null)
    throw badRequest(
      'validation_file is not available: 0G fine-tuning providers train on the training file only.',
      'validation_file',
      'unsupported_parameter',
    )
  if (suffix !== undefined && suffix !== null && (typeof suffix !== 'string' || !SUFFIX.test(suffix)))
    throw badRequest('suffix must be 1 to 64 letters, digits, `-` or `_`.', 'suffix', 'invalid_value')
  if (
    seed !== undefined &&
    seed !== null &&
    (!Number.isInteger(seed) || (seed as number) < 0 || (seed as number) > 2_147_483_647)
  )
    throw badRequest('seed must be a whole number from 0 to 2147483647', 'seed', 'invalid_value')
  const method = json.method as { type?: unknown; supervised?: { hyperparameters?: unknown } } | undefined
  if (method !== undefined && method !== null && method.type !== 'supervised')
    throw badRequest(
      'Only the supervised fine-tuning method is available on 0G providers.',
      'method.type',
      'invalid_value',
    )
  const raw = method?.supervised?.hyperparameters ?? json.hyperparameters ?? {}
  const parsed = hyperparametersInputSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const where = ['hyperparameters', ...issue.path.map(String)].join('.')
    throw badRequest(`Invalid ${where}: ${issue.message}`, where, 'invalid_value')
  }
  const hyperparameters: Hyperparameters = resolveHyperparameters(parsed.data)
  if (
    metadata !== undefined &&
    metadata !== null &&
    (typeof metadata !== 'object' ||
      Array.isArray(metadata) ||
      Object.keys(metadata).length > 16 ||
      Object.entries(metadata).some(([k, v]) => k.length > 64 || typeof v !== 'string' || v.length > 512))
  )
    throw badRequest(
      'metadata is up to 16 string values under keys of up to 64 characters, each up to 512 characters',
      'metadata',
      'invalid_value',
    )
  return {
    model,
    trainingFile: training_file,
    hyperparameters,
    suffix: typeof suffix === 'string' ? suffix : null,
    seed: typeof seed === 'number' ? seed : Math.floor(Math.random() * 2_147_483_647),
    metadata: (metadata as Record<string, string> | null | undefined) ?? null,
  }
}
