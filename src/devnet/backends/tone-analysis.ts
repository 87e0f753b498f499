/**
 * What the dev speech model "hears": it splits audio into voiced segments separated by silence (by frame energy),
 * and measures each segment's loudness and dominant frequency (by zero-crossing rate, which is exact for a pure
 * tone and a rough pitch band for anything else). This is signal analysis, not speech recognition, and the
 * transcript says so by describing tones rather than pretending to find words.
 */

export type ToneSegment = {
  start: number
  end: number
  /** Dominant frequency in Hz over the voiced frames. */
  frequency: number
  /** RMS level in dBFS (0 = full scale). */
  dbfs: number
}

export type ToneAnalysis = { duration: number; segments: ToneSegment[] }

const FRAME_SECONDS = 0.02
/** Quieter than this (-50 dBFS) is silence whatever the recording's level. */
const SILENCE_FLOOR = 0.00316
/** ...and so is anything 26 dB below the loudest frame. */
const RELATIVE_FLOOR = 0.05
/** Silences shorter than this do not split a segment. */
const MIN_GAP_SECONDS = 0.2
/** Voiced runs shorter than this are clicks, not segments. */
const MIN_SEGMENT_SECONDS = 0.1

type Frame = { sumSquares: number; crossings: number; samples: number }

export type ToneAnalyzer = { push(mono: Float32Array): void; finish(): ToneAnalysis }

export function toneAnalyzer(sampleRate: number): ToneAnalyzer {
  const frameSize = Math.max(1, Math.round(sampleRate * FRAME_SECONDS))
  const frames: Frame[] = []
  let current: Frame = { sumSquares: 0, crossings: 0, samples: 0 }
  let previous = 0
  let total = 0

  return {
    push(mono) {
      for (const x of mono) {
        current.sumSquares += x * x
        if (x >= 0 !== previous >= 0) current.crossings++
        previous = x
        current.samples++
        if (current.samples === frameSize) {
          frames.push(current)
          current = { sumSquares: 0, crossings: 0, samples: 0 }
        }
      }
      total += mono.length
    },
    finish() {
      if (current.samples > 0) frames.push(current)
      return { duration: total / sampleRate, segments: segment(frames, frameSize, sampleRate, total / sampleRate) }
    },
  }
}

function rms(frame: Frame): number {
  return Math.sqrt(frame.sumSquares / frame.samples)
}

function segment(frames: Frame[], frameSize: number, sampleRate: number, duration: number): ToneSegment[] {
  // Not Math.max(...frames): a long recording has more frames than a call can take arguments.
  const peak = frames.reduce((max, frame) => Math.max(max, rms(frame)), 0)
  const threshold = Math.max(SILENCE_FLOOR, peak * RELATIVE_FLOOR)
  const frameSeconds = frameSize / sampleRate
  const runs: Array<[number, number]> = []
  frames.forEach((frame, i) => {
    if (rms(frame) < threshold) return
    const last = runs.at(-1)
    if (last && (i - last[1]) * frameSeconds < MIN_GAP_SECONDS) last[1] = i + 1
    else runs.push([i, i + 1])
  })
  return runs
    .filter(([from, to]) => (to - from) * frameSeconds >= MIN_SEGMENT_SECONDS)
    .map(([from, to]) => {
      const voiced = frames.slice(from, to).filter((frame) => rms(frame) >= threshold)
      const samples = voiced.reduce((sum, f) => sum + f.samples, 0)
      const crossings = voiced.reduce((sum, f) => sum + f.crossings, 0)
      const power = voiced.reduce((sum, f) => sum + f.sumSquares, 0) / samples
      return {
        start: from * frameSeconds,
        end: Math.min(duration, to * frameSeconds),
        // A sine crosses zero twice per period.
        frequency: crossings / 2 / (samples / sampleRate),
        dbfs: 10 * Math.log10(power),
      }
    })
}

const NOTES = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'] as const

export function noteName(frequency: number): string {
  const midi = Math.round(69 + 12 * Math.log2(frequency / 440))
  return `${NOTES[((midi % 12) + 12) % 12]}${Math.floor(midi / 12) - 1}`
}

/** One sentence per segment, from its measurements only: different audio, different words. */
export function describeSegment(segment: ToneSegment): string {
  const loudness = segment.dbfs >= -12 ? 'Loud' : segment.dbfs >= -30 ? 'Moderate' : 'Quiet'
  const hz = Math.round(segment.frequency)
  // Above C8 a zero-crossing rate means noise rather than pitch.
  const sound = segment.frequency > 4200 ? `hiss around ${hz} Hz` : `tone at ${noteName(segment.frequency)} (${hz} Hz)`
  return `${loudness} ${sound} for ${(segment.end - segment.start).toFixed(1)} seconds.`
}
