import { spawn } from 'node:child_process'
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Hyperparameters, trainingParamsOf } from './hyperparameters.ts'

/**
 * The trainer contract (examples/trainers/README.md). The provider runs
 *
 *     <command> --dataset <file.jsonl> --base-model <name> --config <config.json> --output-dir <dir>
 *
 * through `/bin/sh -c`, so `command` may carry its own arguments; ours are appended as positional parameters,
 * never re-parsed by the shell. The dataset is the user's JSONL in one of 0G's formats (examples.ts); the config is
 * the task's trainingParams, JSON in Hugging Face TrainingArguments names (hyperparameters.ts). The output directory
 * exists and is empty. The trainer writes progress to stdout, one JSON object per line:
 *
 *     {"event": "progress", "step": 3, "total_steps": 30, "epoch": 1, "loss": 2.71}
 *     {"event": "log", "message": "loaded 120 examples"}
 *
 * Any other stdout line is a log line. Exit 0 means success, with the adapter in the output directory (at least
 * `adapter_config.json`, as PEFT's save_pretrained writes it). Anything else is a failure, told by the last lines of
 * stderr.
 */
export type TrainerEvent =
  | { event: 'progress'; step: number; total_steps: number; epoch: number; loss: number }
  | { event: 'log'; message: string }

export type RunTrainerOptions = {
  /** A shell command line (trusted: the operator's configuration). */
  command: string
  /** Path of the dataset file. */
  dataset: string
  baseModel: string
  /** Resolved hyperparameters, or a task's trainingParams JSON text passed through as it is. */
  hyperparameters: Hyperparameters | string
  outputDir: string
  signal?: AbortSignal
  onEvent: (event: TrainerEvent) => void
  /** Default 24 hours. */
  timeoutMs?: number
  /** Extra environment for the trainer (for example CUDA_VISIBLE_DEVICES). */
  env?: Record<string, string>
}

/** The trainer failed: exited non-zero, was killed, timed out, or left no adapter. */
export class TrainerError extends Error {
  override name = 'TrainerError'
  readonly exitCode: number | null
  readonly stderrTail: string[]

  constructor(message: string, exitCode: number | null, stderrTail: string[]) {
    super(stderrTail.length > 0 ? `${message}: ${stderrTail.join('\n')}` : message)
    this.exitCode = exitCode
    this.stderrTail = stderrTail
  }
}

const STDERR_TAIL_LINES = 20
const MAX_LINE_CHARS = 64 * 1024
/** After SIGTERM, the trainer's process group gets this long to exit before SIGKILL. */
const KILL_GRACE_MS = 5_000

/**
 * Runs a trainer to the end. Resolves when it exits 0 with an adapter in `outputDir`; rejects with TrainerError
 * otherwise, or with the signal's reason when aborted. On timeout or abort the trainer's whole process group is
 * stopped (a Python trainer's workers too).
 */
export async function runTrainer(opts: RunTrainerOptions): Promise<void> {
  opts.signal?.throwIfAborted()
  await mkdir(opts.outputDir, { recursive: true })
  const configDir = await mkdtemp(join(tmpdir(), 'zg-trainer-'))
  try {
    const config = join(configDir, 'config.json')
    const text =
      typeof opts.hyperparameters === 'string' ? opts.hyperparameters : trainingParamsOf(opts.hyperparameters)
    await writeFile(config, text)
    await run(opts, [
      '--dataset',
      opts.dataset,
      '--base-model',
      opts.baseModel,
      '--config',
      config,
      '--output-dir',
      opts.outputDir,
    ])
  } finally {
    await rm(configDir, { recursive: true, force: true })
  }
  try {
    await access(join(opts.outputDir, 'adapter_config.json'))
  } catch {
    throw new TrainerError(`the trainer exited 0 but wrote no adapter_config.json in ${opts.outputDir}`, 0, [])
  }
}

function run(opts: RunTrainerOptions, args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `${opts.command} "$@"`, 'trainer', ...args], {
      env: { ...trainerEnv(), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that a timeout or cancel stops everything the trainer started.
      detached: true,
    })
    const stderrTail: string[] = []
    let stopping: { error: Error } | undefined
    let killTimer: NodeJS.Timeout | undefined

    const stop = (error: Error) => {
      if (stopping) return
      stopping = { error }
      signalGroup('SIGTERM')
      killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS)
    }
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal)
      } catch {
        // already gone
      }
    }
    const timeoutMs = opts.timeoutMs ?? 24 * 60 * 60 * 1000
    const timer = setTimeout(
      () => stop(new TrainerError(`the trainer ran past its ${timeoutMs} ms limit`, null, stderrTail)),
      timeoutMs,
    )
    const onAbort = () => stop(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error('aborted'))
    opts.signal?.addEventListener('abort', onAbort, { once: true })

    readLines(child.stdout, (line) => opts.onEvent(parseEvent(line)))
    readLines(child.stderr, (line) => {
      stderrTail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line)
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift()
    })

    child.once('error', (e) => stop(e))
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      clearTimeout(killTimer)
      opts.signal?.removeEventListener('abort', onAbort)
      // A trainer that exited by itself may leave children behind in its group.
      signalGroup('SIGKILL')
      if (stopping) reject(stopping.error)
      else if (code === 0) resolve()
      else {
        const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`
        reject(new TrainerError(`the trainer ${how}`, code, stderrTail))
      }
    })
  })
}

/** The node's own configuration (ZG_*: keys, API keys, URLs) is none of the trainer's business. */
function trainerEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('ZG_')) env[key] = value
  }
  return env
}

function readLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let pending = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    pending += chunk
    let newline = pending.indexOf('\n')
    while (newline >= 0) {
      const line = pending.slice(0, newline).replace(/\r$/, '')
      pending = pending.slice(newline + 1)
      if (line !== '') onLine(line)
      newline = pending.indexOf('\n')
    }
    // A line without an end is cut rather than held without limit.
    if (pending.length > MAX_LINE_CHARS) {
      onLine(pending.slice(0, MAX_LINE_CHARS))
      pending = ''
    }
  })
  stream.on('end', () => {
    if (pending !== '') onLine(pending)
  })
}

/** A contract event when the line is one, else a log line. */
export function parseEvent(line: string): TrainerEvent {
  if (line.startsWith('{')) {
    try {
      const value = JSON.parse(line) as Record<string, unknown>
      if (
        value.event === 'progress' &&
        [value.step, value.total_steps, value.epoch, value.loss].every(
          (n) => typeof n === 'number' && Number.isFinite(n),
        )
      ) {
        return {
          event: 'progress',
          step: value.step as number,
          total_steps: value.total_steps as number,
          epoch: value.epoch as number,
          loss: value.loss as number,
        }
      }
      if (value.event === 'log' && typeof value.message === 'string') return { event: 'log', message: value.message }
    } catch {
      // not JSON after all: a log line
    }
  }
  return { event: 'log', message: line }
}

/** Quotes one word for /bin/sh. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`
}

/**
 * How to run the dev trainer (dev-trainer-main.ts) with this Node: for `--trainer` on the devnet and in tests. From
 * the sources it runs the .ts file (Node strips the types); from the published package, the bundle's .js.
 */
export const DEV_TRAINER_COMMAND: string = (() => {
  const self = fileURLToPath(import.meta.url)
  const dist = self.lastIndexOf('/dist/')
  const script = self.endsWith('.ts')
    ? join(dirname(self), 'dev-trainer-main.ts')
    : dist >= 0
      ? join(self.slice(0, dist), 'dist', 'fine-tuning', 'dev-trainer-main.js')
      : join(dirname(self), 'dev-trainer-main.js')
  return `${shellQuote(process.execPath)} ${shellQuote(script)}`
})()
