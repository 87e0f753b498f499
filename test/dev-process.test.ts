import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'zg-proc-'))
  dirs.push(d)
  return d
}

/** Every live process below `root`, from /proc (children of children included). */
function descendants(root: number): number[] {
  const parents = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // The command name may hold spaces and parentheses: the ppid is the second field after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parents.set(Number(entry), ppid)
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = []
  const walk = (pid: number) => {
    for (const [child, parent] of parents) {
      if (parent !== pid) continue
      found.push(child)
      walk(child)
    }
  }
  walk(root)
  return found
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function portFree(port: number): Promise<boolean> {
  const probe = createServer()
  return new Promise((resolve) => {
    probe.once('error', () => resolve(false))
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)))
  })
}

function collect(proc: ChildProcess): () => string {
  let out = ''
  proc.stdout?.on('data', (d) => {
    out += d
  })
  proc.stderr?.on('data', (d) => {
    out += d
  })
  return () => out
}

const exited = (proc: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (proc.exitCode !== null) resolve(proc.exitCode)
    else proc.once('exit', (code) => resolve(code))
  })

describe('npm start as a user meets it', () => {
  it('stops the gateway, the providers and anvil on SIGTERM to npm, leaving no process and no port behind', async () => {
    const dataDir = tempDir()
    // npm itself is the parent, as when a user (or a supervisor) runs `npm start` and signals it.
    const npm = spawn('npm', ['start', '--', '--port', '0', '--chain-port', '0', '--data-dir', dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_update_notifier: 'false' },
    })
    const output = collect(npm)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line in 60 s:\n${output()}`)), 60_000)
      npm.stdout!.on('data', () => {
        if (/^ready: /m.test(output())) {
          clearTimeout(timer)
          resolve()
        }
      })
      npm.once('exit', (code) => reject(new Error(`npm exited ${code}:\n${output()}`)))
    })
    const gatewayPort = Number(/^ready: http:\/\/127\.0\.0\.1:(\d+)\//m.exec(output())![1])
    const info = JSON.parse(readFileSync(join(dataDir, 'devnet.json'), 'utf8'))
    const chainPort = Number(new URL(info.rpcUrl).port)
    const providerPorts = (info.providers as Array<{ url: string }>).map((p) => Number(new URL(p.url).port))
    const below = descendants(npm.pid!)
    // The CLI and anvil at least.
    expect(below.length).toBeGreaterThanOrEqual(2)

    npm.kill('SIGTERM')
    await exited(npm)
    await expect.poll(() => below.filter(alive), { timeout: 15_000 }).toEqual([])
    for (const port of [gatewayPort, chainPort, ...providerPorts]) expect(await portFree(port)).toBe(true)
  }, 90_000)

  it('says the gateway port is taken before it starts a chain or deploys anything', async () => {
    const dataDir = tempDir()
    const busy: Server = createServer()
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve))
    const port = (busy.address() as AddressInfo).port
    try {
      const cli = spawn(
        process.execPath,
        ['bin/zg-gateway.js', 'dev', '--port', String(port), '--chain-port', '0', '--data-dir', dataDir],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      const output = collect(cli)
      expect(await exited(cli)).toBe(1)
      expect(output().trim()).toBe(
        `error: the gateway port ${port} on 127.0.0.1 is already in use (another zg-gateway?): stop that, or pick another port (0 = any free port)`,
      )
      expect(readdirSync(dataDir)).toEqual([])
    } finally {
      busy.close()
    }
  })

  it('tells a Node older than 22.18 what it needs in one line, without a stack trace', () => {
    // The pinned Node made to report an old version, as the system's Node 20 would.
    const result = (() => {
      try {
        execFileSync(
          process.execPath,
          [
            '--import',
            'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.11.1"})',
            'bin/zg-gateway.js',
            '--help',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        )
        return { status: 0, stderr: '' }
      } catch (err) {
        const e = err as { status: number; stderr: Buffer }
        return { status: e.status, stderr: e.stderr.toString() }
      }
    })()
    expect(result.status).toBe(1)
    const lines = result.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^zg-gateway needs Node >= 22\.18; this is Node 20\.11\.1\. /)
  })
})
