import { randomUUID } from 'node:crypto'
import type { Context } from 'hono'
import { type ChatChoice, planChat } from './chat-model.ts'
import { chatRequestSchema } from './chat-request.ts'
import { readBody } from './errors.ts'
import { type LoraAdapters, resolveTextModel } from './lora-adapters.ts'
import type { DevBackendConfig } from './options.ts'
import { delayBefore, pause, totalDelay } from './pacing.ts'
import { sseResponse } from './sse.ts'

type Delta = { delta: Record<string, unknown>; logprobs: unknown }

/** One streamed delta per token: content pieces, or for tool calls a header then the arguments piece by piece. */
function deltas(choice: ChatChoice): Delta[] {
  if (choice.kind === 'text') {
    return choice.decoded.pieces.map((content, i) => ({
      delta: { content },
      logprobs: choice.logprobs ? { content: [choice.logprobs[i]], refusal: null } : null,
    }))
  }
  return choice.calls.flatMap((call, index) => [
    {
      delta: { tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] },
      logprobs: null,
    },
    ...call.argumentPieces.map((piece) => ({
      delta: { tool_calls: [{ index, function: { arguments: piece } }] },
      logprobs: null,
    })),
  ])
}

function finishReason(choice: ChatChoice): string {
  return choice.kind === 'text' ? choice.decoded.finishReason : 'tool_calls'
}

function completionTokens(choice: ChatChoice): number {
  return choice.kind === 'text' ? choice.decoded.completionTokens : choice.completionTokens
}

/** POST /v1/chat/completions */
export async function chatCompletions(c: Context, config: DevBackendConfig, adapters: LoraAdapters): Promise<Response> {
  const req = await readBody(c, chatRequestSchema)
  const { model, pickWord } = resolveTextModel(req.model, adapters)
  const plan = planChat(req, config, pickWord)
  const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`
  const created = Math.floor(Date.now() / 1000)
  const completion = plan.choices.reduce((sum, choice) => sum + completionTokens(choice), 0)
  const usage = {
    prompt_tokens: plan.promptTokens,
    completion_tokens: completion,
    total_tokens: plan.promptTokens + completion,
  }
  const perChoice = plan.choices.map(deltas)
  const rounds = Math.max(0, ...perChoice.map((d) => d.length))
  const signal = c.req.raw.signal

  if (!req.stream) {
    await pause(totalDelay(rounds, config), signal)
    return c.json({
      id,
      object: 'chat.completion',
      created,
      model,
      choices: plan.choices.map((choice, index) => ({
        index,
        message:
          choice.kind === 'text'
            ? { role: 'assistant', content: choice.decoded.pieces.join(''), refusal: null, tool_calls: [] }
            : {
                role: 'assistant',
                content: null,
                refusal: null,
                tool_calls: choice.calls.map((call) => ({
                  id: call.id,
                  type: 'function',
                  function: { name: call.name, arguments: call.arguments },
                })),
              },
        logprobs: choice.kind === 'text' && choice.logprobs ? { content: choice.logprobs, refusal: null } : null,
        finish_reason: finishReason(choice),
        stop_reason: choice.kind === 'text' ? choice.decoded.stopString : null,
      })),
      usage,
    })
  }

  const includeUsage = req.stream_options?.include_usage === true
  const chunk = (choices: unknown[]) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices,
    ...(includeUsage ? { usage: null } : {}),
  })
  return sseResponse(signal, async function* (signal) {
    for (let index = 0; index < perChoice.length; index++) {
      yield chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])
    }
    for (let round = 0; round < rounds; round++) {
      await pause(delayBefore(round, config), signal)
      for (const [index, choiceDeltas] of perChoice.entries()) {
        const step = choiceDeltas[round]
        if (step) yield chunk([{ index, ...step, finish_reason: null }])
      }
    }
    for (const [index, choice] of plan.choices.entries()) {
      yield chunk([{ index, delta: {}, logprobs: null, finish_reason: finishReason(choice) }])
    }
    if (includeUsage) yield { ...chunk([]), usage }
  })
}
