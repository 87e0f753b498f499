import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
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

  it('the LangChain snippet gets an answer and streams another', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', snippet('langchain')], {
      cwd: process.cwd(),
    })
    const [invoked, streamed] = stdout.trim().split('\n')
    expect(invoked?.trim().length).toBeGreaterThan(10)
    expect(streamed?.trim().length).toBeGreaterThan(10)
  })
})

/** The docs the README leads to: README.md, and the docs/ pages written with it. */
const LINKED_DOCS = ['README.md', 'docs/architecture.md', 'docs/configuration.md']

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens; repeats get -1, -2, … */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const [, heading] of withoutCode(markdown).matchAll(/^#{1,6} +(.+?) *$/gm)) {
    const slug = heading!
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    out.add(n ? `${slug}-${n}` : slug)
  }
  return out
}

/** Markdown without its fenced code blocks and inline code spans, where brackets are not links. */
function withoutCode(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '')
}

describe('the links of the README and its docs', () => {
  it.each(LINKED_DOCS)('every relative link in %s reaches a file, and its anchor a heading there', (file) => {
    const text = readFileSync(file, 'utf8')
    const broken: string[] = []
    for (const [, target] of withoutCode(text).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target!)) continue
      const [path, anchor] = target!.split('#')
      const linked = path ? join(dirname(file), path) : file
      if (!existsSync(linked)) broken.push(`${target}: no such file`)
      else if (anchor !== undefined && linked.endsWith('.md') && !anchors(readFileSync(linked, 'utf8')).has(anchor))
        broken.push(`${target}: no heading #${anchor} in ${linked}`)
    }
    expect(broken).toEqual([])
  })
})
