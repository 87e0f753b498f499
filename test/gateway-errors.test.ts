import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'
import { json } from './support/json.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>
let base: string
const auth = { authorization: 'Bearer sk-zg-dev' }

beforeAll(async () => {
  stack = await startTestStack()
  base = stack.baseURL
})
afterAll(async () => {
  await stack?.dispose()
})

/** Every error: non-2xx JSON with the four OpenAI keys and an x-request-id. */
async function expectError(res: Response, status: number, code: string | RegExp | null, param?: string) {
  expect(res.status).toBe(status)
  expect(res.headers.get('content-type')).toContain('application/json')
  expect(res.headers.get('x-request-id')).toMatch(/\S+/)
  const body = await json(res)
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type'])
  if (code instanceof RegExp) expect(String(body.error.code)).toMatch(code)
  else expect(body.error.code).toBe(code)
  if (param !== undefined) expect(body.error.param).toBe(param)
  return body.error as { message: string }
}

const post = (path: string, body: string, headers: Record<string, string> = auth) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })

describe('gateway errors, as curl sees them (openai-clients.md §4)', () => {
  const chat = JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: 'hi' }] })

  it('401 without a key and with a wrong key; a lower-case bearer is fine', async () => {
    await expectError(await post('/chat/completions', chat, {}), 401, 'invalid_api_key')
    const wrong = await expectError(
      await post('/chat/completions', chat, { authorization: 'Bearer sk-wrong-key-123456' }),
      401,
      'invalid_api_key',
    )
    expect(wrong.message).not.toContain('sk-wrong-key-123456')
    expect((await post('/chat/completions', chat, { authorization: 'bearer sk-zg-dev' })).status).toBe(200)
  })

  it('404 for an unknown path, 405 for the wrong method', async () => {
    await expectError(await fetch(`${base}/nope`, { headers: auth }), 404, 'unknown_url')
    await expectError(await fetch(`${base}/chat/completions`, { headers: auth }), 405, 'method_not_allowed')
  })

  it('404 model_not_found naming the model', async () => {
    const error = await expectError(
      await post(
        '/chat/completions',
        JSON.stringify({ model: 'gpt-nope', messages: [{ role: 'user', content: 'x' }] }),
      ),
      404,
      'model_not_found',
    )
    expect(error.message).toContain('gpt-nope')
  })

  it('400 for malformed JSON, a non-object body, and missing or mistyped fields, and no provider is paid', async () => {
    const before = stack.backend.stats.requests
    await expectError(await post('/chat/completions', '{"model":'), 400, 'invalid_json')
    await expectError(await post('/chat/completions', '[1,2]'), 400, /^(\w+|null)$/)
    await expectError(
      await post('/chat/completions', JSON.stringify({ model: DEV_CHAT_MODEL })),
      400,
      /^(\w+|null)$/,
      'messages',
    )
    await expectError(
      await post('/chat/completions', JSON.stringify({ model: DEV_CHAT_MODEL, messages: 'hi' })),
      400,
      /^(\w+|null)$/,
      'messages',
    )
    expect(stack.backend.stats.requests).toBe(before)
  })

  it('413 for a body over the limit, promptly and without reading it', async () => {
    const started = Date.now()
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${base}/chat/completions`)
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json', 'content-length': String(60 * 1024 * 1024) },
        },
        (res) => {
          resolve(res.statusCode!)
          res.resume()
          req.destroy()
        },
      )
      req.on('error', reject)
      req.write('{"model":"x","messages":[')
    })
    expect(status).toBe(413)
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('400 with the upstream text and context_length_exceeded for a prompt over the context', async () => {
    const huge = 'word '.repeat(20_000)
    const error = await expectError(
      await post(
        '/chat/completions',
        JSON.stringify({ model: DEV_CHAT_MODEL, messages: [{ role: 'user', content: huge }] }),
      ),
      400,
      'context_length_exceeded',
    )
    expect(error.message).toMatch(/maximum context length/)
  })

  it('passes vLLM extras through unchanged and translates legacy guided_json', async () => {
    const res = await post(
      '/chat/completions',
      JSON.stringify({
        model: DEV_CHAT_MODEL,
        messages: [{ role: 'user', content: 'x' }],
        top_k: 20,
        min_p: 0.1,
        repetition_penalty: 1.1,
        chat_template_kwargs: { enable_thinking: false },
        guided_json: { type: 'object' },
      }),
    )
    expect(res.status).toBe(200)
  })

  it('images: response_format url is refused clearly', async () => {
    await expectError(
      await post(
        '/images/generations',
        JSON.stringify({ model: 'dev/image-procedural', prompt: 'x', response_format: 'url' }),
      ),
      400,
      'unsupported_response_format',
      'response_format',
    )
  })

  it('builds a fresh session token after the wallet revokes all its tokens (generation bump)', async () => {
    const { revokeAllTokens } = await import('../src/chain/actions/revoke-all-tokens.ts')
    const { createZgClients } = await import('../src/chain/clients.ts')
    const { anvilAccount } = await import('../src/devnet/anvil.ts')
    const wallet = createZgClients({ network: stack.devnet.network, account: anvilAccount(1) })
    const first = await post('/chat/completions', chat)
    const provider = first.headers.get('x-zg-provider')! as `0x${string}`
    await revokeAllTokens(wallet, { provider })
    // The provider trusts its cached view of the account for up to 5 s; then it refuses the old token.
    await new Promise((r) => setTimeout(r, 5_200))
    const after = await post('/chat/completions', chat)
    expect(after.status).toBe(200)
    expect(after.headers.get('x-zg-provider')).toBe(provider)
  })
})
