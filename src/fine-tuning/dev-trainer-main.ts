/**
 * The dev trainer as a program, following the trainer contract (trainer.ts, examples/trainers/README.md):
 *
 *     node dev-trainer-main.ts --dataset <file.jsonl> --base-model <name> --config <config.json> --output-dir <dir>
 *       [--step-delay-ms <n>]
 *
 * Progress goes to stdout as JSON lines, errors to stderr with exit code 1. `--step-delay-ms` slows each step down
 * (a devnet knob, to watch a job's events or cancel it mid-run).
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
// The dev chat model's words: the one edge from this room to the devnet, and only in this entry script, since the
// dev trainer fine-tunes exactly that model.
import { VOCABULARY } from '../devnet/backends/prose.ts'
import { trainDevAdapter, writeDevAdapter } from './dev-trainer.ts'
import { readTrainingExamples } from './examples.ts'
import { parseTrainingParams } from './hyperparameters.ts'
import type { TrainerEvent } from './trainer.ts'

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dataset: { type: 'string' },
      'base-model': { type: 'string' },
      config: { type: 'string' },
      'output-dir': { type: 'string' },
      'step-delay-ms': { type: 'string', default: '0' },
    },
    strict: true,
  })
  const { dataset, config, 'base-model': baseModel, 'output-dir': outputDir } = values
  if (!dataset || !config || !baseModel || !outputDir) {
    throw new Error('usage: --dataset <file> --base-model <name> --config <file> --output-dir <dir>')
  }
  const delay = Number(values['step-delay-ms'])
  if (!Number.isFinite(delay) || delay < 0) throw new Error('--step-delay-ms must be a number of milliseconds')
  const emit = (event: TrainerEvent) => process.stdout.write(`${JSON.stringify(event)}\n`)

  const hyperparameters = parseTrainingParams(await readFile(config, 'utf8'))
  const examples = readTrainingExamples(await readFile(dataset, 'utf8'))
  const adapter = await trainDevAdapter({
    examples,
    baseModel,
    baseVocabulary: VOCABULARY,
    hyperparameters,
    onEvent: emit,
    afterStep: delay > 0 ? () => new Promise((resolve) => setTimeout(resolve, delay)) : undefined,
  })
  await writeDevAdapter(outputDir, adapter)
  emit({ event: 'log', message: `adapter written to ${outputDir} (final loss ${adapter.config.final_loss})` })
}

main().catch((e: unknown) => {
  process.stderr.write(`dev trainer: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exitCode = 1
})
