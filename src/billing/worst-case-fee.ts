import { estimateFee, type Prices } from './pricing.ts'

/**
 * The output cap of a chat call that states none, when the backend's context length is not known: reserved on
 * admission, and sent to the backend as max_tokens so the call cannot write (and be billed) past what was reserved.
 */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096n

/** The legacy completions endpoint's own default output cap (OpenAI's and vLLM's): what such a call writes anyway. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16n

const positive = (v: unknown): bigint | undefined =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 ? BigInt(v) : undefined

/** The output cap a text request states itself, as vLLM reads it (chat: max_completion_tokens before max_tokens). */
export function statedMaxTokens(endpoint: string, json: Record<string, unknown>): bigint | undefined {
  if (endpoint === 'chat/completions') return positive(json.max_completion_tokens) ?? positive(json.max_tokens)
  if (endpoint === 'completions') return positive(json.max_tokens)
  return undefined
}

/** Outputs one text call writes: n, times the prompts of a batched completion (a list of strings or token lists). */
function outputsOf(endpoint: string, json: Record<string, unknown>): bigint {
  const n = positive(json.n) ?? 1n
  const prompt = json.prompt
  const batch =
    endpoint === 'completions' && Array.isArray(prompt) && prompt.length > 0 && typeof prompt[0] !== 'number'
      ? BigInt(prompt.length)
      : 1n
  return n * batch
}

/**
 * The most a call may be billed at these prices: the input estimate (estimateFee), plus for chat and completions
 * its output cap × its outputs × outputPrice. The cap is the one the request states; else 16 for a completion (the
 * API's default) and `uncappedChat` for a chat call (what bounds it: the model's context, or a cap sent along).
 */
export function worstCaseFee(
  endpoint: string,
  json: Record<string, unknown> | undefined,
  bodyBytes: number,
  prices: Prices,
  uncappedChat: bigint = DEFAULT_MAX_OUTPUT_TOKENS,
): bigint {
  const input = estimateFee(endpoint, json, bodyBytes, prices)
  if (endpoint !== 'chat/completions' && endpoint !== 'completions') return input
  const j = json ?? {}
  const cap =
    statedMaxTokens(endpoint, j) ?? (endpoint === 'completions' ? COMPLETIONS_DEFAULT_MAX_TOKENS : uncappedChat)
  return input + cap * outputsOf(endpoint, j) * prices.outputPrice
}
