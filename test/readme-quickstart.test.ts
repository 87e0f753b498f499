import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const readme = readFileSync('README.md', 'utf8')
const dataDir = mkdtempSync(join(tmpdir(), 'zg-readme-'))
let dev: ChildProcess

/** The code block that follows `<!-- quickstart:NAME -->` in the README, exactly as a reader copies it. */
function snippet(name: string): string {
  const m = new RegExp(`<!-- quickstart:${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(readme)
  if (!m) throw new Error(`README has no quickstart:${name} block`)
  return m[1]!
}

beforeAll(async () => {
  // `npm start` itself, on the ports the README promises.
  dev = spawn(process.execPath, ['bin/zg-gateway.js', 'dev', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  await new Promise<void>((resolve, reject) => {
    dev.stdout!.on('data', (d) => {
      out += d
      if (out.includes('ready: http://127.0.0.1:8080/v1')) resolve()
    })
    dev.stderr!.on('data', (d) => {
      out += d
    })
    dev.once('exit', (code) => reject(new Error(`npm start exited ${code}:\n${out}`)))
  })
})

afterAll(async () => {
  if (dev && dev.exitCode === null) {
    const exited = new Promise((r) => dev.once('exit', r))
    dev.kill('SIGINT')
    await exited
  }
  rmSync(dataDir, { recursive: true, force: true })
})

describe('the README quick start, copy-pasted', () => {
  it('the curl command gets a chat completion', async () => {
    const { stdout } = await run('bash', ['-c', snippet('curl')])
    const body = JSON.parse(stdout)
    expect(body.object).toBe('chat.completion')
    expect(body.choices[0].message.content.length).toBeGreaterThan(0)
  })

  it('the openai SDK snippet streams an answer', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', snippet('openai')], {
      cwd: process.cwd(),
    })
    expect(stdout.trim().length).toBeGreaterThan(10)
  })
})
