import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { UsageLedger } from '../src/billing/usage-ledger.ts'
import { anvilAccount } from '../src/devnet/anvil.ts'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { createGateway } from '../src/index.ts'
import { startTestStack } from './support/dev-stack.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>
const dir = mkdtempSync(join(tmpdir(), 'zg-sdk-'))

beforeAll(async () => {
  stack = await startTestStack()
})
afterAll(async () => {
  await stack?.dispose()
  rmSync(dir, { recursive: true, force: true })
})

describe("import { createGateway } from 'zg-gateway'", () => {
  it('embeds a gateway in a Node app, listening or as a fetch handler', async () => {
    const options = {
      network: stack.devnet.network,
      wallet: anvilAccount(1),
      dataDir: dir,
      apiKeys: ['sk-app-secret'],
      allowPrivateUrls: true,
    }
    const listening = await createGateway({ ...options, port: 0 })
    const ids: string[] = []
    try {
      const client = new OpenAI({
        baseURL: `${(listening as { url: string }).url}/v1`,
        apiKey: 'sk-app-secret',
        maxRetries: 0,
      })
      const { data: reply, response } = await client.chat.completions
        .create({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'embedded' }] })
        .withResponse()
      expect(reply.choices[0]!.message.content!.length).toBeGreaterThan(0)
      ids.push(response.headers.get('x-request-id')!)
      const { data: stream, response: streamed } = await client.chat.completions
        .create({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'embedded' }], stream: true })
        .withResponse()
      for await (const _ of stream) {
        // read to the end
      }
      ids.push(streamed.headers.get('x-request-id')!)
    } finally {
      // At once, while the calls' records and checks may still be queued: close() must finish them.
      await listening.close()
    }
    const ledger = new UsageLedger(join(dir, 'usage.sqlite'))
    try {
      for (const id of ids) {
        expect(ledger.get(id)).toMatchObject({ status: 200, verification: 'verified', verificationLevel: 'L1' })
      }
    } finally {
      ledger.close()
    }

    const handler = await createGateway({ ...options, dataDir: join(dir, 'handler'), listen: false })
    try {
      const res = await (handler as { fetch: (r: Request) => Promise<Response> }).fetch(
        new Request('http://embedded/v1/models', { headers: { authorization: 'Bearer sk-app-secret' } }),
      )
      expect(res.status).toBe(200)
      expect(((await res.json()) as { data: Array<{ id: string }> }).data.map((m) => m.id)).toContain(DEV_CHAT_MODEL)
      const streamed = await (handler as { fetch: (r: Request) => Promise<Response> }).fetch(
        new Request('http://embedded/v1/chat/completions', {
          method: 'POST',
          headers: { authorization: 'Bearer sk-app-secret', 'content-type': 'application/json' },
          body: JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true }),
        }),
      )
      expect(streamed.headers.get('content-type')).toContain('text/event-stream')
      // Declared open-ended, so a Node server in front (@hono/node-server) sends the headers at once instead of
      // first trying to size the body.
      expect(streamed.headers.get('transfer-encoding')).toBe('chunked')
      expect((await streamed.text()).endsWith('data: [DONE]\n\n')).toBe(true)
    } finally {
      await handler.close()
    }
  })
})
