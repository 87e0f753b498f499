import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DEV_PROVIDERS } from '../src/devnet/dev-stack.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'zg-dev-'))

/** Starts `zg-gateway dev` as a real process and resolves with its output once it prints the ready line. */
function startDev(): Promise<{ proc: ChildProcess; output: () => string }> {
  const proc = spawn(
    process.execPath,
    ['bin/zg-gateway.js', 'dev', '--data-dir', dataDir, '--chain-port', '0', '--port', '0'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  proc.stdout!.on('data', (d) => {
    out += d
  })
  proc.stderr!.on('data', (d) => {
    out += d
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line in 20 s:\n${out}`)), 20_000)
    proc.stdout!.on('data', () => {
      if (/^ready: /m.test(out)) {
        clearTimeout(timer)
        resolve({ proc, output: () => out })
      }
    })
    proc.once('exit', (code) => reject(new Error(`exited ${code}:\n${out}`)))
  })
}

function stop(proc: ChildProcess): Promise<number | string | null> {
  return new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? signal))
    proc.kill('SIGTERM')
  })
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

describe('zg-gateway dev', () => {
  it('deploys the contracts, prints them and a ready line, and stops cleanly on SIGTERM', async () => {
    const { proc, output } = await startDev()
    const info = JSON.parse(readFileSync(join(dataDir, 'devnet.json'), 'utf8'))
    expect(output()).toMatch(/deployed the 0G contracts/i)
    expect(output()).toContain(info.contracts.ledger)
    expect(output()).toContain(info.contracts.inference)
    expect(info.chainId).toBe(31337)
    // The inference providers, and the fine-tuning one.
    expect(info.providers).toHaveLength(DEV_PROVIDERS.length + 1)
    expect(info.providers.map((p: { name: string }) => p.name)).toContain('fine-tuning')
    const base = output().match(/^ready: (\S+)/m)![1]!
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/)
    expect((await fetch(base.replace(/\/v1$/, '/readyz'))).status).toBe(200)
    const models = await fetch(`${base}/models`, { headers: { authorization: 'Bearer sk-zg-dev' } })
    const listed = ((await models.json()) as { data: Array<{ alias_for?: string }> }).data
    // Two providers serve the chat model; the fine-tuning provider serves no inference.
    expect(listed.filter((m) => m.alias_for === undefined).length).toBe(DEV_PROVIDERS.length - 1)
    expect(await stop(proc)).toBe(0)
  })

  it('reuses the chain state and addresses on the next start with the same data dir', async () => {
    const before = JSON.parse(readFileSync(join(dataDir, 'devnet.json'), 'utf8'))
    const { proc, output } = await startDev()
    expect(output()).toMatch(/reus/i)
    const after = JSON.parse(readFileSync(join(dataDir, 'devnet.json'), 'utf8'))
    expect(after.contracts).toEqual(before.contracts)
    const code = await stop(proc)
    expect({ code, output: code === 0 ? '' : output() }).toEqual({ code: 0, output: '' })
  })
})
