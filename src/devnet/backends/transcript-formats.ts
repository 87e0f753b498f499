import { deflateSync } from 'node:zlib'
import { tokenId, tokenize } from './tokenizer.ts'
import { describeSegment, type ToneAnalysis } from './tone-analysis.ts'

export const RESPONSE_FORMATS = ['json', 'text', 'srt', 'verbose_json', 'vtt'] as const
export type ResponseFormat = (typeof RESPONSE_FORMATS)[number]

export type TranscriptOptions = {
  language: string
  temperature: number
  words: boolean
}

type Segment = { start: number; end: number; text: string; dbfs: number }

function segments(analysis: ToneAnalysis): Segment[] {
  return analysis.segments.map((s) => ({ start: s.start, end: s.end, text: describeSegment(s), dbfs: s.dbfs }))
}

function ms(seconds: number): number {
  return Math.round(seconds * 1000) / 1000
}

/** 00:00:01,500 (SRT) or 00:00:01.500 (VTT). */
function timestamp(seconds: number, separator: ',' | '.'): string {
  const total = Math.round(seconds * 1000)
  const pad = (n: number, width = 2) => String(n).padStart(width, '0')
  const h = Math.floor(total / 3_600_000)
  const m = Math.floor(total / 60_000) % 60
  const s = Math.floor(total / 1000) % 60
  return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(total % 1000, 3)}`
}

/** Whisper's measure of repetitiveness: bytes of text over bytes of its zlib compression. */
function compressionRatio(text: string): number {
  const bytes = Buffer.from(text, 'utf8')
  return ms(bytes.length / deflateSync(bytes).length)
}

/** Each word of a segment, timed in proportion to its length. */
function words(segment: Segment) {
  const parts = segment.text.split(' ')
  const letters = parts.reduce((sum, w) => sum + w.length, 0)
  let at = segment.start
  return parts.map((word) => {
    const start = at
    at += ((segment.end - segment.start) * word.length) / letters
    return { word, start: ms(start), end: ms(at) }
  })
}

/** Billing is per started second of audio, as 0G meters speech-to-text. */
function usage(analysis: ToneAnalysis) {
  return { type: 'duration', seconds: Math.ceil(analysis.duration) }
}

export function renderTranscript(
  analysis: ToneAnalysis,
  format: ResponseFormat,
  options: TranscriptOptions,
): { body: string; contentType: string } {
  const list = segments(analysis)
  const text = list.map((s) => s.text).join(' ')
  switch (format) {
    case 'text':
      return { body: text, contentType: 'text/plain; charset=utf-8' }
    case 'srt':
      return {
        body: list
          .map((s, i) => `${i + 1}\n${timestamp(s.start, ',')} --> ${timestamp(s.end, ',')}\n${s.text}\n\n`)
          .join(''),
        contentType: 'text/plain; charset=utf-8',
      }
    case 'vtt':
      return {
        body: `WEBVTT\n\n${list.map((s) => `${timestamp(s.start, '.')} --> ${timestamp(s.end, '.')}\n${s.text}\n\n`).join('')}`,
        contentType: 'text/vtt; charset=utf-8',
      }
    case 'json':
      return { body: JSON.stringify({ text, usage: usage(analysis) }), contentType: 'application/json' }
    case 'verbose_json':
      return {
        body: JSON.stringify({
          task: 'transcribe',
          language: options.language,
          duration: ms(analysis.duration),
          text,
          segments: list.map((s, id) => ({
            id,
            seek: 0,
            start: ms(s.start),
            end: ms(s.end),
            text: s.text,
            tokens: tokenize(s.text).map(tokenId),
            temperature: options.temperature,
            // Louder segments are "surer"; both values are derived from the signal, not from a model.
            avg_logprob: ms(Math.min(0, s.dbfs / 100)),
            compression_ratio: compressionRatio(s.text),
            no_speech_prob: ms(Math.min(1, Math.max(0, -s.dbfs / 60))),
          })),
          ...(options.words ? { words: list.flatMap(words) } : {}),
          usage: usage(analysis),
        }),
        contentType: 'application/json',
      }
  }
}
