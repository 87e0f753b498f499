/** Types of bench/hop-trace.mjs (plain JavaScript, so that bench/gateway-process.mjs loads no TypeScript). */
export type HopMark = [ns: number, what: 'receive' | 'write' | 'create' | 'sent' | 'headers', port: number]
export function startHopTrace(): void
export function stopHopTrace(): HopMark[]
