import type { Context } from 'hono'
import { z } from 'zod'
import { BackendError, checkModel, contextOverflow, readBody } from './errors.ts'
import { EMBEDDING_DIMENSIONS, hashEmbedding, toBase64 } from './hash-embedding.ts'
import { DEV_EMBEDDING_MODEL } from './models.ts'
import type { DevBackendConfig } from './options.ts'
import { tokenize } from './tokenizer.ts'

const tokenIds = z.array(z.number().int().min(0)).min(1)

const embeddingRequestSchema = z.looseObject({
  model: z.string().nullish(),
  input: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)]),
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.number().int().min(1).max(EMBEDDING_DIMENSIONS).nullish(),
})

type Input = z.infer<typeof embeddingRequestSchema>['input']

/** Each input as tokens: text goes through the tokenizer, token ids are taken as they are. */
function inputs(input: Input): Array<ReadonlyArray<string | number>> {
  if (typeof input === 'string') return [tokenize(input)]
  if (input.every((x) => typeof x === 'number')) return [input]
  return input.map((x) => (typeof x === 'string' ? tokenize(x) : x))
}

/** POST /v1/embeddings */
export async function embeddings(c: Context, config: DevBackendConfig): Promise<Response> {
  const req = await readBody(c, embeddingRequestSchema)
  const model = checkModel(req.model, DEV_EMBEDDING_MODEL)
  const all = inputs(req.input)
  for (const [index, tokens] of all.entries()) {
    if (tokens.length === 0) throw new BackendError(400, `input[${index}] is empty`, 'input')
    if (tokens.length > config.maxContextTokens)
      throw contextOverflow(config.maxContextTokens, tokens.length, 0, 'input')
  }
  const dimensions = req.dimensions ?? EMBEDDING_DIMENSIONS
  const promptTokens = all.reduce((sum, tokens) => sum + tokens.length, 0)
  return c.json({
    object: 'list',
    data: all.map((tokens, index) => {
      const vector = hashEmbedding(tokens, dimensions)
      return { object: 'embedding', index, embedding: req.encoding_format === 'base64' ? toBase64(vector) : vector }
    }),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  })
}
