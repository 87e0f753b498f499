import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import OpenAI from 'openai'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { anvilPrivateKey } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'
import { testDatabase } from './support/postgres.ts'
import { serveArgs, spawnUntilReady } from './support/serve.ts'

/**
 * The published package runs the bundle of `npm run build`, not the sources the other tests run: build it, serve
 * the gateway from it exactly as an installed `zg-gateway serve` would, and drive it with the openai client.
 */
const ROOT = join(import.meta.dirname, '..')
let stack: Awaited<ReturnType<typeof startTestStack>>

beforeAll(async () => {
  await promisify(execFile)(process.execPath, [join(ROOT, 'scripts/build.ts')], { cwd: ROOT })
  stack = await startTestStack()
}, 120_000)
afterAll(async () => {
  await stack?.dispose()
})

/** `zg-gateway serve` run from dist/cli/main.js as an installed package runs it, on the dev stack's chain. */
function serveFromBundle(dir: string, extra: string[] = []) {
  const script = `const { main } = await import(${JSON.stringify(join(ROOT, 'dist/cli/main.js'))}); process.exitCode = await main(process.argv.slice(1))`
  return spawnUntilReady(
    [
      '--input-type=module',
      '-e',
      script,
      ...serveArgs(stack.devnet.info, { apiKey: 'sk-bundle', dataDir: join(stack.dataDir, dir) }),
      ...extra,
    ],
    { ZG_PRIVATE_KEY: anvilPrivateKey(1) },
  )
}

describe('npm run build', () => {
  it("type-checks the README's library example against the published types, as an app importing 'zg-gateway'", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const snippet = /<!-- quickstart:library -->\n```ts\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(snippet).toBeDefined()
    // Inside the package directory, 'zg-gateway' resolves to this package itself (its exports, its dist/ types).
    const dir = mkdtempSync(join(ROOT, '.readme-check-'))
    try {
      writeFileSync(join(dir, 'app.ts'), `${snippet}\nexport {}\n`)
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { noEmit: true }, include: ['app.ts'] }),
      )
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc')
      const result = await promisify(execFile)(process.execPath, [tsc, '-p', dir], { cwd: ROOT }).then(
        () => '',
        (err: { stdout: string }) => err.stdout,
      )
      expect(result).toBe('')
      // The import resolves to the built bundle, which exports what the example calls.
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          "const m = await import('zg-gateway'); console.log(typeof m.createGateway, typeof m.networks.testnet)",
        ],
        { cwd: ROOT },
      )
      expect(stdout.trim()).toBe('function object')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('writes the library and CLI bundles with type declarations, and leaves undici at what the sources use', () => {
    for (const file of ['dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js']) {
      expect(existsSync(join(ROOT, file)), file).toBe(true)
    }
    const code = readdirSync(join(ROOT, 'dist/chunks'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(ROOT, 'dist/chunks', f), 'utf8'))
      .join('\n')
    expect(code).toMatch(/Agent ?= ?class extends DispatcherBase/)
    // The slim alias took: none of undici's mock agents and cache stores came along.
    expect(code).not.toMatch(/MockAgent|SqliteCacheStore/)
  })

  it('serves chat, streams and verified receipts from the bundle', async () => {
    const served = await serveFromBundle('bundle')
    try {
      const base = served.base
      const client = new OpenAI({ baseURL: base, apiKey: 'sk-bundle', maxRetries: 0 })
      const { data: reply, response } = await client.chat.completions
        .create({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'from the bundle' }] })
        .withResponse()
      expect(reply.choices[0]!.message.content!.length).toBeGreaterThan(0)
      expect(response.headers.get('x-request-id')).toMatch(/^req_/)

      const stream = await client.chat.completions.create({
        model: DEV_CHAT_MODEL,
        messages: [{ role: 'user', content: 'from the bundle' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      let text = ''
      let usage: OpenAI.CompletionUsage | null | undefined
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? ''
        usage = chunk.usage ?? usage
      }
      expect(text).toBe(reply.choices[0]!.message.content)
      expect(usage?.completion_tokens).toBeGreaterThan(0)

      // The delivery check (signature fetch through the slim undici, libsecp256k1 recovery) ends verified.
      const receiptUrl = new URL(response.headers.get('x-zg-receipt')!, base).toString()
      let receipt: { verification: { status: string; level: string | null } } | undefined
      for (let i = 0; i < 100 && receipt?.verification.status !== 'verified'; i++) {
        const res = await fetch(receiptUrl, { headers: { authorization: 'Bearer sk-bundle' } })
        receipt = (await res.json()) as typeof receipt
        if (receipt?.verification.status === 'pending') await new Promise((r) => setTimeout(r, 50))
        else break
      }
      expect(receipt?.verification).toMatchObject({ status: 'verified', level: 'L1' })
    } finally {
      await served.stop()
    }
  })

  it('serves on a Postgres store from the bundle: it finds and runs the migrations the package ships', async () => {
    const db = await testDatabase()
    const served = await serveFromBundle('bundle-pg', ['--store', db.url])
    try {
      expect(served.output()).toMatch(/^store: postgres \(postgres:\/\//m)
      const client = new OpenAI({ baseURL: served.base, apiKey: 'sk-bundle', maxRetries: 0 })
      const { response } = await client.chat.completions
        .create({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'on Postgres' }] })
        .withResponse()
      const sql = postgres(db.url, { max: 1 })
      const [row] =
        await sql`SELECT count(*)::int AS n FROM calls WHERE request_id = ${response.headers.get('x-request-id')}`
      await sql.end()
      expect(row?.n).toBe(1)
    } finally {
      await served.stop()
      await db.dispose()
    }
  })
})
