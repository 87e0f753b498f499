/** Types of bench/hop-trace.mjs (plain JavaScript, so that bench/gateway-process.mjs loads no TypeScript). */
import type { GatewayStep } from '../src/gateway/steps.ts'

export type HopMark = [
  ns: number,
  what: 'receive' | 'write' | 'create' | 'sent' | 'headers' | GatewayStep,
  port: number,
]
export function startHopTrace(): void
export function stopHopTrace(): HopMark[]
