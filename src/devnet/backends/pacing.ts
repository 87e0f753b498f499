import { setTimeout as sleep } from 'node:timers/promises'
import type { DevBackendConfig } from './options.ts'

/** Waits `ms`, or rejects as soon as `signal` aborts: a disconnected client stops the generation it was waiting for. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted()
  if (ms > 0) await sleep(ms, undefined, { signal })
}

/** The wait before token round `round` (0 = the first token). */
export function delayBefore(round: number, config: DevBackendConfig): number {
  return round === 0 ? config.firstTokenDelayMs : config.tokenDelayMs
}

/** How long `rounds` token rounds take in total, so a non-streamed answer takes as long as the streamed one. */
export function totalDelay(rounds: number, config: DevBackendConfig): number {
  return rounds === 0 ? 0 : config.firstTokenDelayMs + (rounds - 1) * config.tokenDelayMs
}
