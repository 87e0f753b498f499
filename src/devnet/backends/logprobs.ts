import { VOCABULARY } from './prose.ts'
import { seededRng } from './rng.ts'

export type TopLogprob = { token: string; logprob: number; bytes: number[] }
export type TokenLogprob = TopLogprob & { top_logprobs: TopLogprob[] }

function entry(token: string, logprob: number): TopLogprob {
  return { token, logprob, bytes: [...Buffer.from(token, 'utf8')] }
}

/**
 * Deterministic log-probabilities for the emitted tokens, in the OpenAI chat shape. They are not a model's beliefs
 * (there is no model), but they are self-consistent: the emitted token is always the most likely one, and the
 * probabilities of the alternatives never add up to more than one.
 */
export function tokenLogprobs(seed: string, tokens: readonly string[], top: number): TokenLogprob[] {
  return tokens.map((token, position) => {
    const rng = seededRng('logprobs', seed, position)
    // At least one half, so no alternative (each takes at most 0.7 of what is left) can outrank it.
    const p = 0.5 + 0.49 * rng.next()
    const alternatives: TopLogprob[] = []
    let rest = 1 - p
    const leadingSpace = token.startsWith(' ') ? ' ' : ''
    while (alternatives.length < top - 1) {
      const candidate = leadingSpace + rng.pick(VOCABULARY)
      if (candidate === token || alternatives.some((a) => a.token === candidate)) continue
      const share = rest * (0.2 + 0.5 * rng.next())
      rest -= share
      alternatives.push(entry(candidate, round(Math.log(share))))
    }
    alternatives.sort((a, b) => b.logprob - a.logprob)
    const chosen = entry(token, round(Math.log(p)))
    return { ...chosen, top_logprobs: top > 0 ? [chosen, ...alternatives] : [] }
  })
}

/** The legacy /v1/completions shape of the same values. */
export function legacyLogprobs(entries: readonly TokenLogprob[], firstOffset: number) {
  let offset = firstOffset
  const text_offset: number[] = []
  for (const e of entries) {
    text_offset.push(offset)
    offset += e.token.length
  }
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) =>
      Object.fromEntries((e.top_logprobs.length > 0 ? e.top_logprobs : [e]).map((t) => [t.token, t.logprob])),
    ),
    text_offset,
  }
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6
}
