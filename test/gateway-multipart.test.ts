import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import OpenAI, { toFile } from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_STT_MODEL } from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'
import { toneWav } from './support/wav.ts'

let stack: Awaited<ReturnType<typeof startTestStack>>
let client: OpenAI
let dir: string
let wavPath: string
const wav = toneWav([
  { hz: 440, seconds: 0.6 },
  { hz: 0, seconds: 0.3 },
  { hz: 880, seconds: 0.8 },
])

beforeAll(async () => {
  stack = await startTestStack()
  client = new OpenAI({ baseURL: stack.baseURL, apiKey: 'sk-zg-dev', maxRetries: 0 })
  dir = mkdtempSync(join(tmpdir(), 'zg-multipart-test-'))
  wavPath = join(dir, 'tones.wav')
  writeFileSync(wavPath, wav)
})
afterAll(async () => {
  await stack?.dispose()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const run = promisify(execFile)

/** The real curl binary, its `-F` parts in the order given. */
async function curl(form: string[], path = '/audio/transcriptions') {
  const { stdout } = await run(
    'curl',
    [
      '-sS',
      '-H',
      'Authorization: Bearer sk-zg-dev',
      ...form.flatMap((f) => ['-F', f]),
      '-w',
      '\n%header{x-request-id}\n%{http_code}',
      `${stack.baseURL}${path}`,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  )
  const lines = stdout.split('\n')
  const status = Number(lines.pop())
  const requestId = lines.pop()!
  return { status, requestId, body: lines.join('\n') }
}

async function receiptOf(id: string) {
  let receipt: { verification: { status: string; level: string } } | undefined
  for (let i = 0; i < 100 && receipt?.verification.status !== 'verified'; i++) {
    await new Promise((r) => setTimeout(r, 20))
    const res = await fetch(`${stack.baseURL}/receipts/${id}`, { headers: { authorization: 'Bearer sk-zg-dev' } })
    if (res.ok) receipt = (await res.json()) as typeof receipt
  }
  return receipt
}

describe('multipart uploads through the gateway', () => {
  it('reads the model in curl order (file, model, response_format) and returns the asked format', async () => {
    const expected = (
      await client.audio.transcriptions.create({ model: DEV_STT_MODEL, file: await toFile(wav, 'a.wav') })
    ).text
    const fileFirst = await curl([`file=@${wavPath};type=audio/wav`, `model=${DEV_STT_MODEL}`, 'response_format=text'])
    expect(fileFirst.status).toBe(200)
    expect(fileFirst.body.trim()).toBe(expected.trim())
    const modelFirst = await curl([`model=${DEV_STT_MODEL}`, 'response_format=srt', `file=@${wavPath};type=audio/wav`])
    expect(modelFirst.status).toBe(200)
    expect(modelFirst.body).toMatch(/00:00:00,000 -->/)
    // The provider signed a hash of the bytes it got; the gateway's verifier hashed what it sent: the same bytes.
    expect((await receiptOf(fileFirst.requestId))?.verification).toMatchObject({ status: 'verified' })
    expect((await receiptOf(modelFirst.requestId))?.verification).toMatchObject({ status: 'verified' })
  })

  it('works with the official openai client, the file before the model', async () => {
    const verbose = await client.audio.transcriptions.create({
      file: await toFile(wav, 'tones.wav', { type: 'audio/wav' }),
      model: DEV_STT_MODEL,
      response_format: 'verbose_json',
      language: 'en',
    })
    expect(verbose.duration).toBeCloseTo(1.7, 1)
    const vtt = await client.audio.transcriptions.create({
      response_format: 'vtt',
      file: await toFile(wav, 'tones.wav', { type: 'audio/wav' }),
      model: DEV_STT_MODEL,
    })
    expect(String(vtt)).toMatch(/^WEBVTT/)
  })

  it('answers OpenAI-shaped 400s for a missing model, a missing file and a malformed body', async () => {
    const noModel = await curl([`file=@${wavPath}`, 'response_format=text'])
    expect(noModel.status).toBe(400)
    expect(JSON.parse(noModel.body).error).toMatchObject({ param: 'model', code: 'missing_required_parameter' })
    const noFile = await curl([`model=${DEV_STT_MODEL}`, 'response_format=text'])
    expect(noFile.status).toBe(400)
    expect(JSON.parse(noFile.body).error).toMatchObject({ param: 'file', code: 'missing_required_parameter' })
    const cut = await fetch(`${stack.baseURL}/audio/transcriptions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-zg-dev', 'content-type': 'multipart/form-data; boundary=xyz' },
      body: `--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\n${DEV_STT_MODEL}\r\n--xyz\r\nContent-Dispo`,
    })
    expect(cut.status).toBe(400)
    expect(((await cut.json()) as { error: { code: string } }).error.code).toBe('invalid_multipart_body')
  })

  it('streams a 20 MB upload through, and answers 413 past the limit whether it is known before routing or after', async () => {
    // 16 kHz 16-bit mono: about 10 minutes, mostly silence, a tone at the start.
    const big = join(dir, 'big.wav')
    const seconds = 640
    const tone = toneWav([{ hz: 500, seconds: 1 }])
    const dataBytes = seconds * 32_000
    const out = createWriteStream(big)
    const header = Buffer.from(tone.subarray(0, 44))
    header.writeUInt32LE(36 + dataBytes, 4)
    header.writeUInt32LE(dataBytes, 40)
    out.write(header)
    out.write(tone.subarray(44))
    const silence = Buffer.alloc(32_000 * 8)
    for (let written = tone.length - 44; written < dataBytes; written += silence.length)
      if (!out.write(silence.subarray(0, Math.min(silence.length, dataBytes - written)))) await once(out, 'drain')
    out.end()
    await once(out, 'finish')

    // The gateway spools an upload whose model comes after the file to a temporary file: in a directory of this
    // test's own for the duration (os.tmpdir() reads TMPDIR on every call), to see it come and go.
    const spool = join(dir, 'spool')
    mkdirSync(spool)
    const seen = new Set<string>()
    const saved = process.env.TMPDIR
    process.env.TMPDIR = spool
    const watcher = setInterval(() => {
      for (const name of readdirSync(spool)) seen.add(name)
    }, 2)
    try {
      const res = await curl([`file=@${big};type=audio/wav`, `model=${DEV_STT_MODEL}`, 'response_format=verbose_json'])
      expect(res.status).toBe(200)
      expect((JSON.parse(res.body) as { duration: number }).duration).toBeCloseTo(seconds, 0)
      expect((await receiptOf(res.requestId))?.verification).toMatchObject({ status: 'verified' })
    } finally {
      clearInterval(watcher)
      if (saved === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = saved
    }
    expect([...seen].some((name) => name.startsWith('zg-upload-'))).toBe(true)
    expect(readdirSync(spool)).toEqual([])

    // Over 25 MiB with the model first: found while streaming to the provider.
    expect(await chunkedUpload(true)).toMatchObject({ status: 413, code: 'request_too_large' })
    // With the file first: found before routing.
    expect(await chunkedUpload(false)).toMatchObject({ status: 413, code: 'request_too_large' })
    // The provider was not blamed for the client's upload.
    const [provider] = stack.gateway.core.catalog.candidates(DEV_STT_MODEL)
    expect(stack.gateway.core.router.health(provider!.provider).failures).toBe(0)
    const after = await curl([`model=${DEV_STT_MODEL}`, 'response_format=text', `file=@${wavPath}`])
    expect(after.status).toBe(200)
  })
})

/** A chunked upload of a file that never ends (no content-length): sent until the gateway answers. */
function chunkedUpload(modelFirst: boolean): Promise<{ status: number; code: string; sent: number }> {
  const url = new URL(`${stack.baseURL}/audio/transcriptions`)
  return new Promise((resolve, reject) => {
    let sent = 0
    let writing = true
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          authorization: 'Bearer sk-zg-dev',
          'content-type': 'multipart/form-data; boundary=b0undary',
          'transfer-encoding': 'chunked',
        },
      },
      (res) => {
        writing = false
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString()) as { error: { code: string } }
            resolve({ status: res.statusCode ?? 0, code: body.error.code, sent })
          } catch (err) {
            reject(err)
          }
          req.destroy()
        })
      },
    )
    req.on('error', (err) => {
      if (writing) reject(err)
    })
    const model = `--b0undary\r\nContent-Disposition: form-data; name="model"\r\n\r\n${DEV_STT_MODEL}\r\n`
    const file = '--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    // A WAV header promising more audio than comes: the backend reads on instead of refusing the file early.
    const header = Buffer.from(toneWav([]).subarray(0, 44))
    header.writeUInt32LE(0xfffffff0, 4)
    header.writeUInt32LE(0xffffffcc, 40)
    req.write(modelFirst ? model + file : file)
    req.write(header)
    const chunk = Buffer.alloc(256 * 1024)
    const write = () => {
      if (!writing || sent > 40 * 1024 * 1024) return
      sent += chunk.length
      req.write(chunk, (err) => {
        if (!err) setImmediate(write)
      })
    }
    write()
  })
}
