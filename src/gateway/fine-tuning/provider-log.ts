import type { JobEvent } from './records.ts'

export type LogEvent = Pick<JobEvent, 'level' | 'type' | 'message' | 'data'>

const MAX_MESSAGE = 500

/**
 * A provider's task log lines as OpenAI job events. A trainer's progress (a JSON progress event, or a line saying
 * `step N/M … loss X`) becomes a `metrics` event with OpenAI's `step`, `total_steps` and `train_loss`; any other line
 * a message. Every event remembers it came from the log (`data.log_line`), so a restart does not repeat them.
 */
export function eventsFromLog(lines: readonly string[]): LogEvent[] {
  return lines.map((raw) => {
    const line = raw.trim().slice(0, 4096)
    const metrics = progressOf(line)
    if (metrics) {
      const loss = metrics.train_loss === undefined ? '' : `: training loss=${metrics.train_loss.toFixed(4)}`
      return {
        level: 'info',
        type: 'metrics',
        message: `Step ${metrics.step}/${metrics.total_steps}${loss}`,
        data: { ...metrics, log_line: true },
      }
    }
    const level = /\b(error|failed|fatal)\b/i.test(line) ? 'error' : /\bwarn(ing)?\b/i.test(line) ? 'warn' : 'info'
    return { level, type: 'message', message: line.slice(0, MAX_MESSAGE), data: { log_line: true } }
  })
}

type Metrics = { step: number; total_steps: number; train_loss?: number; epoch?: number }

function progressOf(line: string): Metrics | undefined {
  const json = jsonOf(line)
  if (json && typeof json.step === 'number' && typeof json.total_steps === 'number') {
    const loss =
      typeof json.loss === 'number' ? json.loss : typeof json.train_loss === 'number' ? json.train_loss : undefined
    return {
      step: json.step,
      total_steps: json.total_steps,
      ...(loss !== undefined && { train_loss: loss }),
      ...(typeof json.epoch === 'number' && { epoch: json.epoch }),
    }
  }
  const text = /\bstep\s+(\d+)\s*\/\s*(\d+)(?:.*?\bloss\s*[=:]?\s*([0-9.]+(?:e-?\d+)?))?/i.exec(line)
  if (!text) return undefined
  const loss = text[3] === undefined ? undefined : Number(text[3])
  return {
    step: Number(text[1]),
    total_steps: Number(text[2]),
    ...(loss !== undefined && Number.isFinite(loss) && { train_loss: loss }),
  }
}

function jsonOf(line: string): Record<string, unknown> | undefined {
  const start = line.indexOf('{')
  if (start < 0) return undefined
  try {
    const value = JSON.parse(line.slice(start)) as unknown
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
