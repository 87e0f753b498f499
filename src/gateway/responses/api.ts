import type { ForwardRequest } from '../forward.ts'
import { badRequest, GatewayError, notFound } from '../http/openai-error.ts'
import { readResponsesRequest } from './request.ts'
import { type JsonObject, newId, type ResponseDraft, responseFromChatCompletion } from './response.ts'
import { BrokenChainError, type ResponseRecords } from './store.ts'
import { ResponsesStream } from './stream.ts'

/**
 * The Responses API on the gateway: a `POST /v1/responses` is served by the provider's chat completions (same
 * routing, session token, billing and receipt as a chat call, over the exact bytes of that chat call), its answer
 * translated back; responses are kept in the gateway's store for `previous_response_id`, GET and DELETE.
 */

export type ResponsesCall = Pick<
  ForwardRequest,
  'endpoint' | 'model' | 'body' | 'contentType' | 'stream' | 'clientWantsUsage' | 'translate'
>

const JSON_TYPE = 'application/json'

/** The chat call a Responses request becomes, with the translation of its answer. */
export async function responsesCall(
  json: JsonObject,
  store: ResponseRecords,
  apiKeyId: string | null,
): Promise<ResponsesCall> {
  const request = readResponsesRequest(json)
  let earlier: JsonObject[] = []
  const previous = request.previousResponseId
  if (previous) {
    let conversation: JsonObject[] | undefined
    try {
      conversation = await store.conversation(previous, apiKeyId)
    } catch (err) {
      if (!(err instanceof BrokenChainError)) throw err
      throw badRequest(`Previous response ${err.message}.`, 'previous_response_id', 'previous_response_not_found')
    }
    if (!conversation) {
      throw badRequest(
        `Previous response with id '${previous}' not found.`,
        'previous_response_id',
        'previous_response_not_found',
      )
    }
    earlier = conversation
  }
  const draft: ResponseDraft = {
    id: newId('resp'),
    createdAt: Math.floor(Date.now() / 1000),
    model: request.model,
    echo: request.echo,
  }
  let saved: Promise<void> | void | undefined
  const save = (response: JsonObject) => {
    if (!request.store) return
    saved = store.save({
      id: draft.id,
      apiKeyId,
      createdAt: draft.createdAt,
      previousResponseId: previous ?? null,
      input: request.input,
      response,
    })
  }
  return {
    endpoint: 'chat/completions',
    model: request.model,
    body: Buffer.from(JSON.stringify(request.chatBody([...earlier, ...request.input]))),
    contentType: JSON_TYPE,
    stream: request.stream,
    // The translation reads the usage chunk: it is the usage of response.completed.
    clientWantsUsage: true,
    translate: {
      json(bytes) {
        const response = responseFromChatCompletion(draft, bytes)
        save(response)
        return Buffer.from(JSON.stringify(response))
      },
      stream: () => new ResponsesStream(draft, save),
      committed: () => saved ?? undefined,
    },
  }
}

/** Chat request fields and the Responses fields they came from. */
const RESPONSES_PARAMS: Record<string, string> = {
  messages: 'input',
  max_tokens: 'max_output_tokens',
  max_completion_tokens: 'max_output_tokens',
  response_format: 'text.format',
  reasoning_effort: 'reasoning.effort',
}

/**
 * A provider's refusal of the chat call, with `param` named as the client's Responses request names it (a context
 * overflow names `max_output_tokens`, not `max_tokens`). Fields of the same name in both APIs are left as they are.
 */
export function asResponsesError(err: unknown): unknown {
  if (!(err instanceof GatewayError) || err.param === null) return err
  const param = RESPONSES_PARAMS[/^[a-z_]+/.exec(err.param)?.[0] ?? '']
  if (!param) return err
  const { status, message, type, code, headers, noRetry } = err
  return new GatewayError(status, message, { type, code, param, headers, noRetry, cause: err })
}

function missing(id: string) {
  return notFound(`Response with id '${id}' not found.`, 'response_not_found')
}

/** GET /v1/responses/{id} */
export async function storedResponse(store: ResponseRecords, id: string, apiKeyId: string | null): Promise<JsonObject> {
  const record = await store.get(id, apiKeyId)
  if (!record) throw missing(id)
  return record.response
}

/** DELETE /v1/responses/{id} */
export async function deleteResponse(store: ResponseRecords, id: string, apiKeyId: string | null): Promise<JsonObject> {
  if (!(await store.delete(id, apiKeyId))) throw missing(id)
  return { id, object: 'response.deleted', deleted: true }
}

/**
 * GET /v1/responses/{id}/input_items: the items the response was generated from (earlier turns included), as a
 * cursor page: `limit` (1-100, default 20), `order` (`desc` by default, as OpenAI lists them), `after` an item id.
 */
export async function inputItems(
  store: ResponseRecords,
  id: string,
  apiKeyId: string | null,
  query: { limit?: string; order?: string; after?: string },
): Promise<JsonObject> {
  const record = await store.get(id, apiKeyId)
  if (!record) throw missing(id)
  let items: JsonObject[]
  try {
    const earlier = record.previousResponseId
      ? ((await store.conversation(record.previousResponseId, apiKeyId)) ?? [])
      : []
    items = [...earlier, ...record.input]
  } catch (err) {
    if (!(err instanceof BrokenChainError)) throw err
    items = record.input
  }
  const limit = query.limit === undefined ? 20 : Number(query.limit)
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw badRequest(`Invalid 'limit': expected an integer from 1 to 100, but got ${query.limit}.`, 'limit')
  }
  const order = query.order ?? 'desc'
  if (order !== 'asc' && order !== 'desc') {
    throw badRequest(`Invalid value for 'order': '${order}'. Supported values are: 'asc', 'desc'.`, 'order')
  }
  if (order === 'desc') items = items.toReversed()
  let start = 0
  if (query.after !== undefined) {
    start = items.findIndex((item) => item.id === query.after) + 1
    if (start === 0) throw badRequest(`No input item with id '${query.after}' in response '${id}'.`, 'after')
  }
  const data = items.slice(start, start + limit)
  return {
    object: 'list',
    data,
    first_id: (data[0]?.id as string | undefined) ?? null,
    last_id: (data.at(-1)?.id as string | undefined) ?? null,
    has_more: start + limit < items.length,
  }
}
