import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'
import { serveArgs } from './support/serve.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>
const API_KEY = 'sk-crash-test'

/** `serve` as its own process (spawnUntilReady has no kill -9): resolves with it and its base URL once ready. */
function serve(dataDir: string): Promise<{ proc: ChildProcess; base: string }> {
  const proc = spawn(
    process.execPath,
    ['bin/zg-gateway.js', ...serveArgs(stack.devnet.info, { apiKey: API_KEY, dataDir })],
    {
      env: { PATH: process.env.PATH ?? '', ZG_PRIVATE_KEY: anvilPrivateKey(1) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d
      const m = out.match(/^ready: (\S+)/m)
      if (m) resolve({ proc, base: m[1]! })
    })
    proc.stderr!.on('data', (d) => {
      out += d
    })
    proc.once('exit', (code) => reject(new Error(`the gateway exited ${code}: ${out}`)))
  })
}

beforeAll(async () => {
  stack = await startTestStack()
}, 60_000)
afterAll(async () => {
  await stack?.dispose()
})

/** One call; its request id when the client received the whole answer, else null. */
async function call(base: string, i: number): Promise<string | null> {
  const stream = i % 2 === 1
  try {
    const res = await fetch(`${base}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: DEV_CHAT_MODEL,
        messages: [{ role: 'user', content: `crash test call ${i}: tell me a story` }],
        stream,
        ...(stream && i % 4 === 1 && { stream_options: { include_usage: true } }),
      }),
    })
    const text = await res.text()
    const id = res.headers.get('x-request-id')
    if (res.status !== 200 || !id) return null
    if (stream) return text.includes('data: [DONE]') ? id : null
    JSON.parse(text) // throws on a cut body
    return id
  } catch {
    return null
  }
}

describe('a gateway killed with kill -9 under load', () => {
  it('has a usage record for every answer a client received in full', async () => {
    const dataDir = join(stack.dataDir, 'crash')
    const { proc, base } = await serve(dataDir)
    const exited = new Promise<void>((r) => proc.once('exit', () => r()))
    const TOTAL = 160
    const CONCURRENCY = 16
    // Killed once this many answers are complete: mid-load by count, not by time.
    const KILL_AFTER = 50
    const complete: string[] = []
    let next = 0
    let killed = false
    const worker = async () => {
      while (next < TOTAL) {
        const id = await call(base, next++)
        if (id) complete.push(id)
        if (!killed && complete.length >= KILL_AFTER) {
          killed = true
          proc.kill('SIGKILL')
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    if (!killed) proc.kill('SIGKILL')
    await exited
    expect(killed).toBe(true)
    expect(complete.length).toBeGreaterThanOrEqual(KILL_AFTER)
    // The calls cut by the kill prove that it came mid-load.
    expect(complete.length).toBeLessThan(TOTAL)

    // Read as a restarted gateway would: WAL replayed on open.
    const db = new DatabaseSync(join(dataDir, 'gateway', 'usage.sqlite'))
    try {
      const ids = new Set(
        (db.prepare('SELECT request_id FROM calls').all() as Array<{ request_id: string }>).map((r) => r.request_id),
      )
      expect(complete.filter((id) => !ids.has(id))).toEqual([])
    } finally {
      db.close()
    }
  }, 120_000)
})
