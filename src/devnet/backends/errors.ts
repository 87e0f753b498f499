import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { z } from 'zod'
import { DEV_MODEL_IDS } from './models.ts'

/**
 * Errors in vLLM's own shape, `{error:{message,type,param,code}}` with `code` the HTTP status as an int. This is
 * deliberately not OpenAI's shape: the dev backends stand where vLLM stands, and the gateway must normalize.
 */
const TYPES: Record<number, string> = {
  400: 'BadRequestError',
  404: 'NotFoundError',
  413: 'Request Entity Too Large',
  429: 'Too Many Requests',
  500: 'InternalServerError',
}

export function vllmErrorBody(status: number, message: string, param: string | null = null) {
  return { error: { message, type: TYPES[status] ?? 'Error', param, code: status } }
}

/** Thrown by handlers; the app's error handler answers with vllmErrorBody. */
export class BackendError extends Error {
  readonly status: ContentfulStatusCode
  readonly param: string | null

  constructor(status: ContentfulStatusCode, message: string, param: string | null = null) {
    super(message)
    this.status = status
    this.param = param
  }
}

export function errorResponse(c: Context, err: unknown): Response {
  // A client that went away aborted the work it was waiting for; there is nobody to answer.
  if (c.req.raw.signal.aborted) return c.body(null)
  if (err instanceof BackendError) return c.json(vllmErrorBody(err.status, err.message, err.param), err.status)
  console.error('dev backend: unexpected error', err)
  return c.json(vllmErrorBody(500, `Internal error: ${(err as Error).message}`), 500)
}

/** Reads a JSON body and checks it: a body that is not JSON, or not the right shape, is vLLM's 400. */
export async function readBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let body: unknown
  try {
    body = await c.req.json()
  } catch (err) {
    throw new BackendError(400, `Invalid JSON body: ${(err as Error).message}`)
  }
  const parsed = schema.safeParse(body)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  const param = issue && issue.path.length > 0 ? issue.path.join('.') : null
  throw new BackendError(400, param ? `${param}: ${issue?.message}` : (issue?.message ?? 'Invalid request'), param)
}

/**
 * Each endpoint serves one dev model. A missing model means that one, as in vLLM; a dev model of another kind is a
 * 400; a name nobody serves is vLLM's 404.
 */
export function checkModel(requested: string | undefined | null, served: string): string {
  if (requested == null || requested === served) return served
  if ((DEV_MODEL_IDS as readonly string[]).includes(requested)) {
    throw new BackendError(
      400,
      `The model \`${requested}\` does not support this endpoint; use \`${served}\`.`,
      'model',
    )
  }
  throw new BackendError(404, `The model \`${requested}\` does not exist.`, 'model')
}

/** vLLM's context-overflow error, which LangChain and the gateway recognise by its wording. */
export function contextOverflow(
  maxContextTokens: number,
  promptTokens: number,
  completionTokens: number,
  param: string,
): BackendError {
  return new BackendError(
    400,
    `This model's maximum context length is ${maxContextTokens} tokens. However, you requested ` +
      `${promptTokens + completionTokens} tokens (${promptTokens} in the messages, ${completionTokens} in the ` +
      'completion). Please reduce the length of the messages or completion.',
    param,
  )
}
