import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { readDevAdapter } from './dev-trainer.ts'
import { DEFAULT_HYPERPARAMETERS } from './hyperparameters.ts'
import { nauticalChatJsonl } from './test-support.ts'
import { DEV_TRAINER_COMMAND, parseEvent, runTrainer, shellQuote, TrainerError, type TrainerEvent } from './trainer.ts'

const dir = await mkdtemp(join(tmpdir(), 'zg trainer '))
afterAll(() => rm(dir, { recursive: true, force: true }))
const dataset = join(dir, 'data set.jsonl')
await writeFile(dataset, nauticalChatJsonl(12))
let runs = 0
const outDir = () => join(dir, `out ${++runs}`)

/** Running, not gone and not a zombie waiting for its new parent to reap it. */
async function alive(pid: number): Promise<boolean> {
  try {
    return !/^\d+ \(.*\) Z/.test(await readFile(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** A trainer written in sh, for the failure paths. */
async function script(body: string): Promise<string> {
  const path = join(dir, `trainer-${++runs}.sh`)
  await writeFile(path, `${body}\n`)
  return `/bin/sh ${shellQuote(path)}`
}

describe('runTrainer (the trainer contract)', () => {
  it('runs the dev trainer: progress events with a falling loss, an adapter in the output directory', async () => {
    const events: TrainerEvent[] = []
    const outputDir = outDir()
    await runTrainer({
      command: DEV_TRAINER_COMMAND,
      dataset,
      baseModel: 'dev/chat-deterministic',
      hyperparameters: { ...DEFAULT_HYPERPARAMETERS, n_epochs: 2 },
      outputDir,
      onEvent: (e) => events.push(e),
    })
    const progress = events.filter((e) => e.event === 'progress')
    expect(progress).toHaveLength(6)
    expect(progress.at(-1)).toMatchObject({ step: 6, total_steps: 6, epoch: 2 })
    expect(progress.at(-1)!.loss).toBeLessThan(progress[0]!.loss)
    expect(events.at(-1)).toMatchObject({ event: 'log', message: expect.stringContaining('adapter written') })
    expect((await readdir(outputDir)).sort()).toEqual(['adapter_config.json', 'adapter_model.json'])
    const adapter = await readDevAdapter(outputDir)
    expect(adapter.config).toMatchObject({ base_model_name_or_path: 'dev/chat-deterministic', steps: 6 })
    expect(adapter.config.hyperparameters).toEqual({ ...DEFAULT_HYPERPARAMETERS, n_epochs: 2 })
  })

  it('the dev trainer fails with exit 1 and a reason on a bad dataset; takes --step-delay-ms', async () => {
    const bad = join(dir, 'bad.jsonl')
    await writeFile(bad, '{"text": "fine"}\n{"prompt": 1}\n')
    const run = (command: string, file: string) =>
      runTrainer({
        command,
        dataset: file,
        baseModel: 'dev/chat-deterministic',
        hyperparameters: DEFAULT_HYPERPARAMETERS,
        outputDir: outDir(),
        onEvent: () => {},
      })
    await expect(run(DEV_TRAINER_COMMAND, bad)).rejects.toThrow(
      /^the trainer exited with code 1: dev trainer: the dataset cannot be read: line 2: a record needs/,
    )
    const started = Date.now()
    await run(`${DEV_TRAINER_COMMAND} --step-delay-ms 50`, dataset)
    expect(Date.now() - started).toBeGreaterThanOrEqual(9 * 50)
  })

  it("passes a task's trainingParams text through as the config file, and the contract's arguments", async () => {
    const outputDir = outDir()
    const command = await script(
      [
        'for a in "$@"; do echo "{\\"event\\":\\"log\\",\\"message\\":\\"$a\\"}"; done',
        'cat "$6"; echo',
        'echo not json',
        'echo \'{"event":"progress","step":1,"total_steps":1,"epoch":1,"loss":0.5}\'',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
        'echo "${ZG_PRIVATE_KEY:-no key}"',
        'echo "$EXTRA"',
        'echo "{}" > "$8/adapter_config.json"',
      ].join('\n'),
    )
    process.env.ZG_PRIVATE_KEY = '0xsecret'
    const events: TrainerEvent[] = []
    try {
      await runTrainer({
        command,
        dataset,
        baseModel: 'Qwen2.5-0.5B-Instruct',
        hyperparameters: '{"num_train_epochs":1,"max_steps":3}',
        outputDir,
        env: { EXTRA: 'extra' },
        onEvent: (e) => events.push(e),
      })
    } finally {
      delete process.env.ZG_PRIVATE_KEY
    }
    const messages = events.map((e) => (e.event === 'log' ? e.message : e))
    expect(messages.slice(0, 8)).toEqual([
      '--dataset',
      dataset,
      '--base-model',
      'Qwen2.5-0.5B-Instruct',
      '--config',
      expect.stringMatching(/config\.json$/),
      '--output-dir',
      outputDir,
    ])
    expect(messages.slice(8)).toEqual([
      '{"num_train_epochs":1,"max_steps":3}',
      'not json',
      { event: 'progress', step: 1, total_steps: 1, epoch: 1, loss: 0.5 },
      'no key',
      'extra',
    ])
  })

  it('rejects a failing trainer with its exit code and the last lines of stderr', async () => {
    const command = await script(
      'i=0; while [ $i -lt 30 ]; do echo "warning $i" >&2; i=$((i+1)); done; echo "CUDA out of memory" >&2; exit 3',
    )
    const error = await runTrainer({
      command,
      dataset,
      baseModel: 'm',
      hyperparameters: DEFAULT_HYPERPARAMETERS,
      outputDir: outDir(),
      onEvent: () => {},
    }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TrainerError)
    expect((error as TrainerError).exitCode).toBe(3)
    expect((error as TrainerError).stderrTail).toHaveLength(20)
    expect((error as TrainerError).stderrTail.at(-1)).toBe('CUDA out of memory')
    expect((error as TrainerError).message).toMatch(/^the trainer exited with code 3: warning 11\n/)
  })

  it('refuses an exit 0 without an adapter', async () => {
    await expect(
      runTrainer({
        command: 'true',
        dataset,
        baseModel: 'm',
        hyperparameters: DEFAULT_HYPERPARAMETERS,
        outputDir: outDir(),
        onEvent: () => {},
      }),
    ).rejects.toThrow('the trainer exited 0 but wrote no adapter_config.json')
  })

  it('stops the whole process group on timeout and on abort', async () => {
    const pidFile = join(dir, 'child.pid')
    // The trainer starts a child of its own that would outlive it.
    const command = await script(`sleep 30 & echo $! > ${shellQuote(pidFile)}; echo started; wait`)
    const started = Date.now()
    await expect(
      runTrainer({
        command,
        dataset,
        baseModel: 'm',
        hyperparameters: DEFAULT_HYPERPARAMETERS,
        outputDir: outDir(),
        onEvent: () => {},
        timeoutMs: 300,
      }),
    ).rejects.toThrow('the trainer ran past its 300 ms limit')
    expect(Date.now() - started).toBeLessThan(5000)
    const childPid = Number(await readFile(pidFile, 'utf8'))
    await expect.poll(() => alive(childPid)).toBe(false)

    const controller = new AbortController()
    const run = runTrainer({
      command,
      dataset,
      baseModel: 'm',
      hyperparameters: DEFAULT_HYPERPARAMETERS,
      outputDir: outDir(),
      signal: controller.signal,
      onEvent: (e) => {
        if (e.event === 'log' && e.message === 'started') controller.abort(new Error('cancelled by the user'))
      },
    })
    await expect(run).rejects.toThrow('cancelled by the user')
    const aborted = new AbortController()
    aborted.abort(new Error('already'))
    await expect(
      runTrainer({
        command,
        dataset,
        baseModel: 'm',
        hyperparameters: DEFAULT_HYPERPARAMETERS,
        outputDir: outDir(),
        signal: aborted.signal,
        onEvent: () => {},
      }),
    ).rejects.toThrow('already')
  })

  it('parseEvent: contract events, anything else a log line', () => {
    expect(parseEvent('{"event":"progress","step":1,"total_steps":2,"epoch":0.5,"loss":1.25,"lr":0.1}')).toEqual({
      event: 'progress',
      step: 1,
      total_steps: 2,
      epoch: 0.5,
      loss: 1.25,
    })
    expect(parseEvent('{"event":"progress","step":"1"}')).toEqual({
      event: 'log',
      message: '{"event":"progress","step":"1"}',
    })
    expect(parseEvent('{"event":"log","message":"hi"}')).toEqual({ event: 'log', message: 'hi' })
    expect(parseEvent('{oops')).toEqual({ event: 'log', message: '{oops' })
  })
})
