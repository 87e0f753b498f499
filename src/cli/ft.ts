import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import type { Command, CommandGroup, Options, Values } from './command.ts'
import { UsageError } from './command.ts'
import { printJson, table } from './output.ts'

/** Where the gateway is and the key to use: the same for every `ft` command. */
const gatewayOptions: Options = {
  gateway: { type: 'string', description: 'the gateway (default $ZG_GATEWAY_URL or http://127.0.0.1:8080)' },
  'api-key': { type: 'string', description: 'the API key (default $ZG_API_KEY, else $OPENAI_API_KEY)' },
}

const jobOptions: Options = {
  model: { type: 'string', description: 'the base model to fine-tune (required)' },
  suffix: { type: 'string', description: 'up to 64 characters put in the fine-tuned model name' },
  epochs: { type: 'string', description: 'n_epochs (default auto)' },
  'batch-size': { type: 'string', description: 'batch_size (default auto)' },
  'learning-rate-multiplier': { type: 'string', description: 'learning_rate_multiplier (default auto)' },
  seed: { type: 'string', description: 'the seed (default random)' },
}

type Job = {
  id: string
  status: string
  model: string
  fine_tuned_model: string | null
  created_at: number
  error: { message: string } | null
  zg?: { provider: string | null; fee: string | null; phase: string }
}
type JobEvent = { id: string; created_at: number; level: string; message: string }

class GatewayClient {
  readonly #base: string
  readonly #key: string

  constructor(values: Values) {
    this.#base = ((values.gateway as string | undefined) ?? process.env.ZG_GATEWAY_URL ?? 'http://127.0.0.1:8080')
      .replace(/\/+$/, '')
      .replace(/\/v1$/, '')
    const key = (values['api-key'] as string | undefined) ?? process.env.ZG_API_KEY ?? process.env.OPENAI_API_KEY
    if (!key) throw new UsageError('an API key is needed: --api-key, ZG_API_KEY or OPENAI_API_KEY')
    this.#key = key
  }

  async call<T>(method: string, path: string, body?: string | FormData, contentType?: string): Promise<T> {
    let res: Response
    try {
      res = await fetch(`${this.#base}/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${this.#key}`, ...(contentType ? { 'content-type': contentType } : {}) },
        body,
      })
    } catch (err) {
      throw new UsageError(`The gateway at ${this.#base} did not answer: ${(err as Error).message}`)
    }
    const text = await res.text()
    if (!res.ok) {
      let message = text.slice(0, 500)
      try {
        message = (JSON.parse(text) as { error: { message: string } }).error.message
      } catch {}
      throw new Error(`${method} /v1${path} answered ${res.status}: ${message}`)
    }
    return JSON.parse(text) as T
  }

  async upload(path: string): Promise<{ id: string; bytes: number; filename: string }> {
    const form = new FormData()
    form.set('purpose', 'fine-tune')
    form.set('file', new Blob([await readFile(path)]), basename(path))
    return this.call('POST', '/files', form)
  }

  create(values: Values, trainingFile: string): Promise<Job> {
    const model = values.model as string | undefined
    if (!model) throw new UsageError('--model is required')
    const hyper: Record<string, unknown> = {}
    const number = (flag: string, key: string) => {
      const raw = values[flag] as string | undefined
      if (raw === undefined) return
      const n = Number(raw)
      if (!Number.isFinite(n)) throw new UsageError(`--${flag} is a number`)
      hyper[key] = n
    }
    number('epochs', 'n_epochs')
    number('batch-size', 'batch_size')
    number('learning-rate-multiplier', 'learning_rate_multiplier')
    const body = {
      model,
      training_file: trainingFile,
      ...(values.suffix ? { suffix: values.suffix } : {}),
      ...(values.seed ? { seed: Number(values.seed) } : {}),
      ...(Object.keys(hyper).length ? { method: { type: 'supervised', supervised: { hyperparameters: hyper } } } : {}),
    }
    return this.call('POST', '/fine_tuning/jobs', JSON.stringify(body), 'application/json')
  }

  /** Prints the job's events as they come (oldest first) until it ends; resolves with the finished job. */
  async follow(id: string, print: (line: string) => void, pollMs = 1000): Promise<Job> {
    const seen = new Set<string>()
    for (;;) {
      const job = await this.call<Job>('GET', `/fine_tuning/jobs/${id}`)
      const events = await this.call<{ data: JobEvent[] }>('GET', `/fine_tuning/jobs/${id}/events?limit=1000`)
      for (const e of events.data.toReversed()) {
        if (seen.has(e.id)) continue
        seen.add(e.id)
        print(`${new Date(e.created_at * 1000).toISOString()}  ${e.level.padEnd(5)}  ${e.message}`)
      }
      if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job
      await new Promise((r) => setTimeout(r, pollMs))
    }
  }
}

const progress = (values: Values) => (line: string) => {
  // Progress goes to stderr: with --json, stdout holds the result alone.
  if (!values.quiet) process.stderr.write(`${line}\n`)
}

function jobLine(job: Job): string {
  if (job.status === 'succeeded') return `${job.id} succeeded: ${job.fine_tuned_model}`
  if (job.status === 'failed') return `${job.id} failed: ${job.error?.message ?? 'unknown error'}`
  return `${job.id} ${job.status}`
}

async function finished(values: Values, job: Job): Promise<number> {
  if (values.json) printJson(job)
  else process.stdout.write(`${jobLine(job)}\n`)
  return job.status === 'failed' ? 1 : 0
}

const upload: Command = {
  summary: 'Upload a training file (JSONL in OpenAI chat format), checked line by line',
  args: '<file.jsonl>',
  options: gatewayOptions,
  async run(values, [path]) {
    if (!path) throw new UsageError('name the JSONL file to upload')
    const file = await new GatewayClient(values).upload(path)
    if (values.json) printJson(file)
    else process.stdout.write(`${file.id}  ${file.bytes} bytes  ${file.filename}\n`)
    return 0
  },
}

const create: Command = {
  summary: 'Create a fine-tuning job from an uploaded file; --wait follows it to the end',
  args: '<file-id>',
  options: {
    ...gatewayOptions,
    ...jobOptions,
    wait: { type: 'boolean', description: 'follow the job until it ends' },
    quiet: { type: 'boolean', description: 'no progress lines' },
  },
  async run(values, [fileId]) {
    if (!fileId) throw new UsageError('name the training file id (zg-gateway ft upload prints it)')
    const client = new GatewayClient(values)
    const job = await client.create(values, fileId)
    if (!values.wait) return finished(values, job)
    return finished(values, await client.follow(job.id, progress(values)))
  },
}

const run: Command = {
  summary: 'Upload a JSONL file, fine-tune on it and follow the job until the tuned model answers',
  args: '<file.jsonl>',
  options: { ...gatewayOptions, ...jobOptions, quiet: { type: 'boolean', description: 'no progress lines' } },
  async run(values, [path]) {
    if (!path) throw new UsageError('name the JSONL file to train on')
    const client = new GatewayClient(values)
    const file = await client.upload(path)
    progress(values)(`uploaded ${file.filename} as ${file.id} (${file.bytes} bytes)`)
    const job = await client.create(values, file.id)
    progress(values)(`created ${job.id} on ${job.model}`)
    return finished(values, await client.follow(job.id, progress(values)))
  },
}

const list: Command = {
  summary: "List this key's fine-tuning jobs, newest first",
  options: gatewayOptions,
  async run(values) {
    const jobs = await new GatewayClient(values).call<{ data: Job[] }>('GET', '/fine_tuning/jobs?limit=100')
    if (values.json) {
      printJson(jobs.data)
      return 0
    }
    const rows = jobs.data.map((j) => [j.id, j.status, j.model, j.fine_tuned_model ?? '', j.zg?.fee ?? ''])
    process.stdout.write(`${table([['JOB', 'STATUS', 'MODEL', 'FINE-TUNED MODEL', 'FEE (neuron)'], ...rows])}\n`)
    return 0
  },
}

const get: Command = {
  summary: 'Show a fine-tuning job',
  args: '<job-id>',
  options: gatewayOptions,
  async run(values, [id]) {
    if (!id) throw new UsageError('name the job')
    const job = await new GatewayClient(values).call<Job>('GET', `/fine_tuning/jobs/${id}`)
    if (values.json) printJson(job)
    else process.stdout.write(`${jobLine(job)}\n`)
    return 0
  },
}

const events: Command = {
  summary: "Print a job's events; --follow keeps printing until it ends",
  args: '<job-id>',
  options: { ...gatewayOptions, follow: { type: 'boolean', short: 'f', description: 'follow until the job ends' } },
  async run(values, [id]) {
    if (!id) throw new UsageError('name the job')
    const client = new GatewayClient(values)
    if (values.follow) return finished(values, await client.follow(id, (l) => process.stdout.write(`${l}\n`)))
    const page = await client.call<{ data: JobEvent[] }>('GET', `/fine_tuning/jobs/${id}/events?limit=1000`)
    if (values.json) printJson(page.data)
    else for (const e of page.data.toReversed()) process.stdout.write(`${e.level.padEnd(5)}  ${e.message}\n`)
    return 0
  },
}

const cancel: Command = {
  summary: 'Cancel a job the provider has not delivered yet (nothing is charged)',
  args: '<job-id>',
  options: gatewayOptions,
  async run(values, [id]) {
    if (!id) throw new UsageError('name the job')
    return finished(values, await new GatewayClient(values).call<Job>('POST', `/fine_tuning/jobs/${id}/cancel`))
  },
}

export const ftGroup: CommandGroup = {
  summary: "Fine-tune models on 0G through a gateway's OpenAI fine-tuning API",
  commands: { run, upload, create, list, get, events, cancel },
}
