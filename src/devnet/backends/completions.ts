import { randomUUID } from 'node:crypto'
import type { Context } from 'hono'
import { z } from 'zod'
import { samplingFields, stopStrings } from './chat-request.ts'
import { type Decoded, decode } from './decode.ts'
import { contextOverflow, readBody } from './errors.ts'
import { legacyLogprobs, type TokenLogprob, tokenLogprobs } from './logprobs.ts'
import { type LoraAdapters, resolveTextModel } from './lora-adapters.ts'
import type { DevBackendConfig } from './options.ts'
import { delayBefore, pause, totalDelay } from './pacing.ts'
import { writeProse } from './prose.ts'
import { seededRng } from './rng.ts'
import { sseResponse } from './sse.ts'
import { countTokens } from './tokenizer.ts'

const tokenIds = z.array(z.number().int().min(0))

const completionRequestSchema = z.looseObject({
  ...samplingFields,
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds.min(1), z.array(tokenIds.min(1)).min(1)]),
  logprobs: z.number().int().min(0).max(20).nullish(),
})

/** OpenAI's and vLLM's default for the legacy endpoint. */
const DEFAULT_MAX_TOKENS = 16

type Prompt = { text: string; tokens: number }

/** A prompt is text, or token ids: those are counted as they are, and seed the output by their values. */
function prompts(prompt: z.infer<typeof completionRequestSchema>['prompt']): Prompt[] {
  if (typeof prompt === 'string') return [{ text: prompt, tokens: countTokens(prompt) }]
  if (prompt.every((p) => typeof p === 'number')) return [{ text: prompt.join(','), tokens: prompt.length }]
  return prompt.map((p) =>
    typeof p === 'string' ? { text: p, tokens: countTokens(p) } : { text: p.join(','), tokens: p.length },
  )
}

type CompletionChoice = { decoded: Decoded; logprobs: TokenLogprob[] | null }

/** POST /v1/completions: the dev chat model (or a loaded adapter) without a chat template. */
export async function completions(c: Context, config: DevBackendConfig, adapters: LoraAdapters): Promise<Response> {
  const req = await readBody(c, completionRequestSchema)
  const { model, pickWord } = resolveTextModel(req.model, adapters)
  const n = req.n ?? 1
  const maxTokens = req.max_tokens ?? DEFAULT_MAX_TOKENS
  const all = prompts(req.prompt)
  const choices: CompletionChoice[] = all.flatMap((prompt) => {
    if (prompt.tokens + maxTokens > config.maxContextTokens) {
      throw contextOverflow(config.maxContextTokens, prompt.tokens, maxTokens, 'prompt')
    }
    return Array.from({ length: n }, (_, i) => {
      const seed = `${prompt.text}\u0000${req.seed ?? ''}\u0000${i}`
      const rng = seededRng('completion', seed)
      const decoded = decode(writeProse(rng, 16 + rng.int(48), pickWord), maxTokens, stopStrings(req.stop))
      return { decoded, logprobs: req.logprobs != null ? tokenLogprobs(seed, decoded.pieces, req.logprobs) : null }
    })
  })
  const promptTokens = all.reduce((sum, p) => sum + p.tokens, 0)
  const completionTokens = choices.reduce((sum, choice) => sum + choice.decoded.completionTokens, 0)
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  }
  const id = `cmpl-${randomUUID().replaceAll('-', '')}`
  const created = Math.floor(Date.now() / 1000)
  const rounds = Math.max(0, ...choices.map((choice) => choice.decoded.pieces.length))
  const signal = c.req.raw.signal

  if (!req.stream) {
    await pause(totalDelay(rounds, config), signal)
    return c.json({
      id,
      object: 'text_completion',
      created,
      model,
      choices: choices.map(({ decoded, logprobs }, index) => ({
        index,
        text: decoded.pieces.join(''),
        logprobs: logprobs ? legacyLogprobs(logprobs, 0) : null,
        finish_reason: decoded.finishReason,
        stop_reason: decoded.stopString,
      })),
      usage,
    })
  }

  const includeUsage = req.stream_options?.include_usage === true
  const chunk = (choices: unknown[]) => ({
    id,
    object: 'text_completion',
    created,
    model,
    choices,
    ...(includeUsage ? { usage: null } : {}),
  })
  return sseResponse(signal, async function* (signal) {
    const offsets = choices.map(() => 0)
    for (let round = 0; round < rounds; round++) {
      await pause(delayBefore(round, config), signal)
      for (const [index, { decoded, logprobs }] of choices.entries()) {
        const text = decoded.pieces[round]
        if (text === undefined) continue
        const entry = logprobs?.[round]
        yield chunk([
          { index, text, logprobs: entry ? legacyLogprobs([entry], offsets[index]!) : null, finish_reason: null },
        ])
        offsets[index]! += text.length
      }
    }
    for (const [index, { decoded }] of choices.entries()) {
      yield chunk([
        { index, text: '', logprobs: null, finish_reason: decoded.finishReason, stop_reason: decoded.stopString },
      ])
    }
    if (includeUsage) yield { ...chunk([]), usage }
  })
}
