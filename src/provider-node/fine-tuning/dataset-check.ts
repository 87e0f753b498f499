import { readTrainingExamples } from '../../fine-tuning/examples.ts'
import { countDatasetTokens } from '../../fine-tuning/tokens.ts'
import { FineTuningError } from './ft-error.ts'

/**
 * Checks an uploaded dataset the way the trainers will read it (0G's three JSONL formats, line by line) and counts
 * its tokens, the fee basis. A 400 naming the lines at fault otherwise.
 */
export function readDataset(bytes: Uint8Array): { examples: number; tokens: number } {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new FineTuningError(400, 'invalid_dataset', 'the dataset is not UTF-8 text')
  }
  let examples: number
  try {
    examples = readTrainingExamples(text).length
  } catch (err) {
    throw new FineTuningError(400, 'invalid_dataset', `the dataset is not valid JSONL: ${(err as Error).message}`)
  }
  if (!examples) throw new FineTuningError(400, 'invalid_dataset', 'the dataset holds no training example')
  return { examples, tokens: countDatasetTokens(text) }
}
