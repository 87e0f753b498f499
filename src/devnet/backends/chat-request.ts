import { z } from 'zod'

/**
 * The chat request fields the dev chat model reads. Objects are loose: like vLLM (`extra="allow"`), fields it does
 * not know (top_k, min_p, repetition_penalty, chat_template_kwargs, ...) are accepted and ignored.
 */
const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() })

const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z
    .array(
      z.looseObject({
        id: z.string().optional(),
        function: z.looseObject({ name: z.string(), arguments: z.string() }),
      }),
    )
    .nullish()
    .transform((calls) => calls ?? undefined),
  tool_call_id: z.string().optional(),
})

const jsonObject = z.record(z.string(), z.unknown())

const tool = z.looseObject({
  type: z.literal('function'),
  function: z.looseObject({
    name: z.string().min(1),
    description: z.string().optional(),
    parameters: jsonObject.optional(),
  }),
})

const positiveInt = z.number().int().min(1)

/** What a chat request may ask of the output, shared with /v1/completions. */
export const samplingFields = {
  model: z.string().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: positiveInt.nullish(),
  n: z.number().int().min(1).max(128).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
}

export const chatRequestSchema = z.looseObject({
  ...samplingFields,
  messages: z.array(message).min(1),
  max_completion_tokens: positiveInt.nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  response_format: z
    .looseObject({
      type: z.enum(['text', 'json_object', 'json_schema']),
      json_schema: z.looseObject({ name: z.string().optional(), schema: jsonObject.optional() }).optional(),
    })
    .nullish(),
  // vLLM's structured outputs: `json` (a schema, or one as a string) and `choice` are honoured, the rest ignored.
  structured_outputs: z
    .looseObject({ json: z.union([z.string(), jsonObject]).optional(), choice: z.array(z.string()).min(1).optional() })
    .nullish(),
  tools: z.array(tool).nullish(),
  tool_choice: z
    .union([
      z.enum(['none', 'auto', 'required']),
      z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string() }) }),
    ])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
})

export type ChatRequest = z.infer<typeof chatRequestSchema>

export function stopStrings(stop: string | string[] | null | undefined): string[] {
  if (stop == null) return []
  return typeof stop === 'string' ? [stop] : stop
}
