import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ByteRelay, compileByteRelay, NODE_BYTE_RELAY, startByteRelay } from '../bench/byte-relays.ts'

/** A real server: echoes the request's body with its method and path; `/big` answers 4 MiB. */
let origin: Server
let originPort = 0
/** Connections the origin saw close: a relay hangs up its upstream side when its client goes. */
let closedAtOrigin = 0
const BIG = Buffer.alloc(4 * 1024 * 1024, 'z')
const dir = mkdtempSync(join(tmpdir(), 'zg-relays-'))

beforeAll(async () => {
  origin = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.url === '/big') return res.end(BIG)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() }))
    })
  })
  origin.on('connection', (socket) => socket.on('close', () => closedAtOrigin++))
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve))
  originPort = (origin.address() as AddressInfo).port
})
afterAll(async () => {
  await new Promise((resolve) => origin.close(resolve))
  rmSync(dir, { recursive: true, force: true })
})

const compiled = compileByteRelay(dir)
const relays: Array<[string, () => string[]]> = [
  ['C', () => ('path' in compiled ? [compiled.path] : [])],
  ['Node', () => NODE_BYTE_RELAY],
]

describe.each(relays)('the bench byte relay (%s)', (name, command) => {
  let relay: ByteRelay
  beforeAll(async () => {
    // The C relay needs a C compiler: CI installs one (.ci/run); without it the bench says so and leaves it out.
    expect(compiled).toHaveProperty('path')
    relay = await startByteRelay(`byte relay (${name})`, command(), originPort)
  })
  afterAll(() => relay?.stop())

  it('passes requests and answers through unchanged, several on one kept-alive connection', async () => {
    const dispatcher = new Agent({ connections: 1 })
    for (let i = 0; i < 5; i++) {
      const body = JSON.stringify({ i, text: 'x'.repeat(i * 1000) })
      const res = await request(`http://127.0.0.1:${relay.port}/v1/echo?i=${i}`, { method: 'POST', body, dispatcher })
      expect(res.statusCode).toBe(200)
      expect(await res.body.json()).toEqual({ method: 'POST', url: `/v1/echo?i=${i}`, body })
    }
    const big = await request(`http://127.0.0.1:${relay.port}/big`, { dispatcher })
    expect(Buffer.from(await big.body.arrayBuffer()).equals(BIG)).toBe(true)
    await dispatcher.close()
  })

  it('hangs up the upstream connection when its client goes', async () => {
    const before = closedAtOrigin
    const dispatcher = new Agent({ connections: 1 })
    const res = await request(`http://127.0.0.1:${relay.port}/v1/echo`, { method: 'POST', body: '{}', dispatcher })
    await res.body.text()
    await dispatcher.close()
    const deadline = Date.now() + 5_000
    while (closedAtOrigin === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(closedAtOrigin).toBe(before + 1)
  })
})
