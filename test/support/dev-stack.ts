import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type DevStack, startDevStack } from '../../src/devnet/dev-stack.ts'

/** The dev stack (what `npm start` runs) on free ports in a temporary data dir. */
export async function startTestStack(
  opts: { tokenDelayMs?: number; firstTokenDelayMs?: number; keepAliveMs?: number } = {},
): Promise<DevStack & { baseURL: string; dataDir: string; dispose(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'zg-stack-'))
  const stack = await startDevStack({ dataDir, port: 0, chainPort: 0, ...opts, tokenDelayMs: opts.tokenDelayMs ?? 1 })
  return {
    ...stack,
    baseURL: `${stack.gateway.url}/v1`,
    dataDir,
    async dispose() {
      await stack.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
