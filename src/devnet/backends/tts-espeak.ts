import { spawn } from 'node:child_process'
import { BackendError } from './errors.ts'
import type { Pcm } from './tts-tone.ts'
import { wavReader } from './wav.ts'

/** espeak-ng's rate at speed 1, in words per minute (its default), and the range it accepts. */
const DEFAULT_WPM = 175
const MIN_WPM = 80
const MAX_WPM = 450
/** The most WAV bytes read from espeak-ng: 4096 characters at its slowest rate make about 25 MB. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024
const TIMEOUT_MS = 60_000

/** OpenAI's voices, each on an espeak-ng voice and variant: a male or female timbre, two with a British accent. */
const VOICES: Record<string, string> = {
  alloy: 'en-us+m3',
  ash: 'en-us+m1',
  ballad: 'en+m4',
  coral: 'en-us+f2',
  echo: 'en-us+m2',
  fable: 'en+m5',
  onyx: 'en-us+m7',
  nova: 'en-us+f1',
  sage: 'en-us+f4',
  shimmer: 'en-us+f5',
  verse: 'en-us+m6',
  marin: 'en-us+f3',
  cedar: 'en-us+m4',
}

/** What espeak-ng's -v takes: a language (`de`, `en-us`), optionally with a variant (`fr+f2`). */
const ESPEAK_VOICE = /^[a-z]{2,3}(-[a-z0-9]{1,8}){0,2}(\+[a-z0-9]{1,16})?$/i

/** The espeak-ng voice for an OpenAI voice name, or an espeak-ng voice name itself; undefined for anything else. */
export function espeakVoice(voice: string): string | undefined {
  const known = VOICES[voice.toLowerCase()]
  if (known) return known
  return ESPEAK_VOICE.test(voice) ? voice : undefined
}

type Run = { code: number | null; stdout: Buffer; stderr: string }

function run(command: string, args: string[], input: string | undefined): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let size = 0
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_OUTPUT_BYTES) child.kill('SIGKILL')
      else out.push(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString('utf8')
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out), stderr: stderr.trim() })
    })
    // A child that exits before reading all its input must not crash the server with EPIPE.
    child.stdin.on('error', () => {})
    child.stdin.end(input ?? '')
  })
}

/** The espeak-ng version line when `command` runs, else undefined (not installed, not executable). */
export async function espeakVersion(command: string): Promise<string | undefined> {
  try {
    const { code, stdout } = await run(command, ['--version'], undefined)
    const line = stdout.toString('utf8').split('\n')[0]?.trim()
    return code === 0 && line ? line : undefined
  } catch {
    return undefined
  }
}

/**
 * Speaks `text` with espeak-ng: the text goes in on stdin (never on the command line, where it could pass for an
 * option), the WAV comes out on stdout. `speed` scales espeak-ng's words per minute, within the range it accepts.
 */
export async function espeakSpeech(
  command: string,
  text: string,
  opts: { voice: string; speed: number },
): Promise<Pcm> {
  const wpm = Math.round(Math.min(MAX_WPM, Math.max(MIN_WPM, DEFAULT_WPM * opts.speed)))
  const result = await run(command, ['--stdout', '--stdin', '-b', '1', '-v', opts.voice, '-s', String(wpm)], text)
  if (result.code !== 0) {
    if (/voice/i.test(result.stderr)) {
      throw new BackendError(400, `espeak-ng has no voice ${JSON.stringify(opts.voice)}: ${result.stderr}`, 'voice')
    }
    throw new BackendError(500, `espeak-ng failed (exit ${result.code}): ${result.stderr || 'no message'}`)
  }
  let sampleRate = 0
  const chunks: Float32Array[] = []
  const reader = wavReader(
    (format) => {
      sampleRate = format.sampleRate
    },
    (mono) => chunks.push(mono),
  )
  reader.write(result.stdout)
  reader.end()
  const length = chunks.reduce((sum, c) => sum + c.length, 0)
  const samples = new Int16Array(length)
  let at = 0
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++)
      samples[at + i] = Math.max(-32768, Math.min(32767, Math.round(chunk[i]! * 32768)))
    at += chunk.length
  }
  return { samples, sampleRate }
}
