import { createHash } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Busboy } from '@fastify/busboy'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Delivery } from './delivery-verifier.ts'
import { type StubGateway, startStubGateway } from './stub-gateway.ts'

const MODEL = 'test/image-edit'
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(300, 9)])

/** What the stub provider received. */
type Received = { path: string; headers: IncomingHttpHeaders; body: Buffer }

let provider: Server
let stub: StubGateway
let baseURL: string
let received: Received[] = []
let deliveries: Delivery[]
let failures: string[]

beforeAll(async () => {
  // A provider node stand-in: it reads the whole upload and answers as an image backend would.
  provider = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ created: 1, data: [{ b64_json: PNG.toString('base64') }] }))
    })
    req.on('error', () => {})
  })
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve))
  stub = await startStubGateway({
    providerUrl: `http://127.0.0.1:${(provider.address() as AddressInfo).port}`,
    model: MODEL,
    serviceType: 'image-editing',
    maxAttempts: 2,
  })
  baseURL = stub.baseURL
  deliveries = stub.deliveries
  failures = stub.failures
})
afterAll(async () => {
  await stub?.close()
  provider?.close()
})
beforeEach(() => {
  received = []
  deliveries.length = 0
  failures.length = 0
})

async function fieldsOf(r: Received) {
  const fields: Record<string, string> = {}
  const files: Record<string, Buffer[]> = {}
  await new Promise<void>((resolve, reject) => {
    const parser = Busboy({ headers: { 'content-type': String(r.headers['content-type']) } })
    parser.on('field', (name, value) => {
      fields[name] = value
    })
    parser.on('file', (name, stream) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        files[name] = [...(files[name] ?? []), Buffer.concat(chunks)]
      })
    })
    parser.on('error', reject)
    parser.on('finish', resolve)
    parser.end(r.body)
  })
  return { fields, files }
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

function editForm(parts: Array<[string, string | Blob]>): FormData {
  const form = new FormData()
  for (const [name, value] of parts) {
    if (typeof value === 'string') form.append(name, value)
    else form.append(name, value, 'image.png')
  }
  return form
}

const post = (body: FormData) =>
  fetch(`${baseURL}/images/edits`, { method: 'POST', headers: { authorization: 'Bearer sk-test' }, body })

describe('POST /v1/images/edits', () => {
  it('forwards the official client’s edit, asking the provider for b64_json', async () => {
    const client = new OpenAI({ baseURL, apiKey: 'sk-test', maxRetries: 0 })
    const result = await client.images.edit({
      model: MODEL,
      image: await toFile(PNG, 'cat.png', { type: 'image/png' }),
      prompt: 'a hat on the cat',
      size: '256x256',
    })
    expect(Buffer.from(result.data![0]!.b64_json!, 'base64')).toEqual(PNG)
    expect(received).toHaveLength(1)
    expect(received[0]!.path).toBe('/v1/proxy/images/edits')
    const { fields, files } = await fieldsOf(received[0]!)
    expect(fields).toMatchObject({
      model: MODEL,
      prompt: 'a hat on the cat',
      size: '256x256',
      response_format: 'b64_json',
    })
    expect(files.image?.[0]).toEqual(PNG)
    // What the verifier hashed is what the provider got.
    expect(deliveries[0]!.requestBody).toEqual({ sha256: sha256(received[0]!.body) })
  })

  it('forwards several image[] files and a mask byte for byte when response_format is given', async () => {
    const form = editForm([
      ['image[]', new Blob([PNG])],
      ['image[]', new Blob([PNG.subarray(0, 100)])],
      ['mask', new Blob([PNG.subarray(0, 50)])],
      ['model', MODEL],
      ['prompt', 'two cats'],
      ['response_format', 'b64_json'],
      ['n', '2'],
    ])
    // Serialized once: each serialization picks its own boundary.
    const serialized = new Response(form)
    const contentType = serialized.headers.get('content-type') ?? ''
    const sent = Buffer.from(await serialized.arrayBuffer())
    const res = await fetch(`${baseURL}/images/edits`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk-test',
        'content-type': contentType,
      },
      body: sent,
    })
    expect(res.status).toBe(200)
    // Nothing to add: the provider got the client's bytes unchanged.
    expect(received[0]!.body.equals(sent)).toBe(true)
    const { files } = await fieldsOf(received[0]!)
    expect(files['image[]']).toHaveLength(2)
  })

  it('refuses response_format url: at once when it comes before the image, while streaming when after', async () => {
    const early = await post(
      editForm([
        ['model', MODEL],
        ['response_format', 'url'],
        ['image', new Blob([PNG])],
        ['prompt', 'x'],
      ]),
    )
    expect(early.status).toBe(400)
    expect(((await early.json()) as { error: { param: string } }).error.param).toBe('response_format')
    expect(received).toHaveLength(0)

    const late = await post(
      editForm([
        ['model', MODEL],
        ['image', new Blob([PNG])],
        ['prompt', 'x'],
        ['response_format', 'url'],
      ]),
    )
    expect(late.status).toBe(400)
    expect(((await late.json()) as { error: { param: string; code: string } }).error).toMatchObject({
      param: 'response_format',
      code: 'unsupported_response_format',
    })
    expect(failures).toEqual([])
  })

  it('answers 400 for a missing image or model, and for a body that is not multipart', async () => {
    const noImage = await post(
      editForm([
        ['model', MODEL],
        ['prompt', 'x'],
        ['mask', new Blob([PNG])],
      ]),
    )
    expect(noImage.status).toBe(400)
    expect(((await noImage.json()) as { error: { param: string } }).error.param).toBe('image')
    const noModel = await post(
      editForm([
        ['image', new Blob([PNG])],
        ['prompt', 'x'],
      ]),
    )
    expect(((await noModel.json()) as { error: { param: string } }).error.param).toBe('model')
    const json = await fetch(`${baseURL}/images/edits`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'x' }),
    })
    expect(json.status).toBe(400)
    expect(((await json.json()) as { error: { code: string } }).error.code).toBe('invalid_content_type')
    expect(received).toHaveLength(0)
  })
})

describe('POST /v1/audio/transcriptions', () => {
  it('routes by the model field, not by a text field after it', async () => {
    const form = editForm([
      ['file', new Blob([Buffer.from('RIFF name="model"\r\n\r\nwrong\r\n')])],
      ['model', MODEL],
      ['response_format', 'text'],
    ])
    const res = await fetch(`${baseURL}/audio/transcriptions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-test' },
      body: form,
    })
    expect(res.status).toBe(200)
    const { fields } = await fieldsOf(received[0]!)
    // Transcriptions get no field added.
    expect(fields).toEqual({ model: MODEL, response_format: 'text' })
  })
})
