import { fnv1a } from './rng.ts'

/** Mono 16-bit samples at a sample rate. */
export type Pcm = { samples: Int16Array; sampleRate: number }

export const TONE_SAMPLE_RATE = 24_000

/** Per character at speed 1, in seconds: a consonant's tone, a vowel's (longer), and the pauses. */
const CONSONANT = 0.07
const VOWEL = 0.11
const SPACE = 0.06
const COMMA = 0.2
const STOP = 0.35
/** Fade in and out of each tone, so that it starts and ends at zero: no clicks. */
const FADE = 0.005

type Segment = { seconds: number; hz: number }

function segments(text: string, basePitch: number): Segment[] {
  const out: Segment[] = []
  for (const ch of text.normalize('NFKD').toLowerCase()) {
    if (/\s/u.test(ch)) out.push({ seconds: SPACE, hz: 0 })
    else if (/[,;:]/u.test(ch)) out.push({ seconds: COMMA, hz: 0 })
    else if (/[.!?]/u.test(ch)) out.push({ seconds: STOP, hz: 0 })
    else if (/[\p{L}\p{N}]/u.test(ch)) {
      const code = ch.codePointAt(0)!
      // Within two octaves above the voice's pitch, on a semitone picked by the character.
      out.push({ seconds: /[aeiouy]/u.test(ch) ? VOWEL : CONSONANT, hz: basePitch * 2 ** ((code % 24) / 12) })
    }
    // Combining marks (NFKD splits accents off) and other symbols are silent and take no time.
  }
  return out
}

/**
 * Speaks `text` as tones: one short tone per letter or digit (its pitch from the character, a vowel's a little
 * longer), short pauses for spaces and longer ones for punctuation, over a base pitch picked by the voice. A plainly
 * synthetic but deterministic signal whose length follows the text, for machines without espeak-ng; never speech.
 */
export function toneSpeech(text: string, opts: { voice: string; speed: number; maxSeconds: number }): Pcm {
  const rate = TONE_SAMPLE_RATE
  const basePitch = 110 + (fnv1a(opts.voice) % 150)
  const parts = segments(text, basePitch)
  const total = Math.min(
    Math.round(parts.reduce((sum, p) => sum + p.seconds / opts.speed, 0) * rate),
    Math.floor(opts.maxSeconds * rate),
  )
  const samples = new Int16Array(total)
  let at = 0
  for (const { seconds, hz } of parts) {
    if (at >= total) break
    const count = Math.min(Math.round((seconds / opts.speed) * rate), total - at)
    if (hz > 0) {
      const fade = Math.max(1, Math.min(Math.round(FADE * rate), Math.floor(count / 2)))
      for (let i = 0; i < count; i++) {
        const t = i / rate
        const envelope = Math.min(1, i / fade, (count - 1 - i) / fade)
        // A fundamental and its octave: a little less bare than a sine.
        const wave = 0.7 * Math.sin(2 * Math.PI * hz * t) + 0.3 * Math.sin(4 * Math.PI * hz * t)
        samples[at + i] = Math.round(wave * envelope * 0.3 * 32767)
      }
    }
    at += count
  }
  return { samples, sampleRate: rate }
}
