import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { generatePrivateKey } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestStack } from './support/dev-stack.ts'

const run = promisify(execFile)
let stack: Awaited<ReturnType<typeof startTestStack>>

beforeAll(async () => {
  stack = await startTestStack()
}, 120_000)
afterAll(async () => {
  await stack?.dispose()
})

type Check = { name: string; status: string; detail: string; fix?: string }

async function doctor(env: Record<string, string> = {}) {
  try {
    const { stdout } = await run(
      process.execPath,
      ['bin/zg-gateway.js', 'doctor', '--data-dir', stack.dataDir, '--json'],
      {
        env: { PATH: process.env.PATH ?? '', ...env },
      },
    )
    return { code: 0, body: JSON.parse(stdout) as { ok: boolean; checks: Check[] } }
  } catch (err) {
    const e = err as { code: number; stdout: string }
    return { code: e.code, body: JSON.parse(e.stdout) as { ok: boolean; checks: Check[] } }
  }
}

const named = (checks: Check[], name: string) => checks.find((c) => c.name === name)!

describe('zg-gateway doctor', () => {
  it('says what is missing and what to do, then all set once it is done', async () => {
    // The dev stack serves with its dev key only: no key a real client could be given.
    const before = await doctor()
    expect(before.code).toBe(1)
    expect(named(before.body.checks, 'API keys')).toMatchObject({
      status: 'fail',
      fix: expect.stringMatching(/keys create/),
    })
    for (const name of ['RPC', 'contract ledger', 'contract inference', 'wallet', 'ledger', 'providers', 'verifiable'])
      expect(named(before.body.checks, name).status, name).toBe('ok')
    expect(named(before.body.checks, 'providers').detail).toMatch(/^7 answered/)

    await run(process.execPath, ['bin/zg-gateway.js', 'keys', 'create', '--name', 'doc', '--data-dir', stack.dataDir])
    const after = await doctor()
    expect(after.code).toBe(0)
    expect(after.body.ok).toBe(true)
  }, 60_000)

  it('a wallet with no ledger fails with the command that fixes it', async () => {
    const r = await doctor({ ZG_PRIVATE_KEY: generatePrivateKey() })
    expect(r.code).toBe(1)
    expect(named(r.body.checks, 'wallet')).toMatchObject({
      status: 'fail',
      detail: expect.stringMatching(/no 0G for gas/),
    })
    expect(named(r.body.checks, 'ledger')).toMatchObject({
      status: 'fail',
      fix: 'create one: zg-gateway account create --amount 3',
    })
  }, 60_000)
})
