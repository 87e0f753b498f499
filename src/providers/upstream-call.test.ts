import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, errors } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { UpstreamCall } from './upstream-call.ts'

let server: Server | undefined
let agent: Agent | undefined
afterEach(async () => {
  await agent?.close()
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  server = undefined
  agent = undefined
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler)
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  agent = new Agent({ keepAliveTimeout: 1000 })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function dispatch(origin: string, call: UpstreamCall, path = '/') {
  agent!.dispatch({ origin, path, method: 'POST', body: Buffer.from('{}'), headersTimeout: 2000, bodyTimeout: 0 }, call)
}

describe('UpstreamCall', () => {
  it('hands over the chunks that came before the body was taken up, then the rest, then the trailers', async () => {
    const origin = await serve((req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/event-stream', trailer: 'x-sig' })
      res.write('data: 1\n\n')
      setTimeout(() => {
        res.write('data: 2\n\n')
        res.addTrailers({ 'x-sig': 'abc' })
        res.end()
      }, 30)
    })
    const call = new UpstreamCall(new AbortController().signal)
    dispatch(origin, call)
    const start = await call.started
    expect(start.statusCode).toBe(200)
    expect(start.headers['content-type']).toBe('text/event-stream')
    // The first event has come with the headers; taken up later, it is handed over first.
    await sleep(10)
    const got: string[] = []
    const ended = new Promise<void>((resolve, reject) => call.relay((c) => got.push(c.toString()), resolve, reject))
    expect(got).toEqual(['data: 1\n\n'])
    await ended
    expect(got.join('')).toBe('data: 1\n\ndata: 2\n\n')
    expect(call.trailers['x-sig']).toBe('abc')
  })

  it('reads a whole body, and an error status with its body', async () => {
    const origin = await serve((req, res) => {
      req.resume()
      res.writeHead(req.url === '/bad' ? 429 : 200, { 'retry-after': '1' })
      res.end(req.url === '/bad' ? '{"error":"slow down"}' : 'x'.repeat(100_000))
    })
    const ok = new UpstreamCall(new AbortController().signal)
    dispatch(origin, ok)
    expect((await ok.started).statusCode).toBe(200)
    expect((await ok.bytes()).length).toBe(100_000)
    const bad = new UpstreamCall(new AbortController().signal)
    dispatch(origin, bad, '/bad')
    const start = await bad.started
    expect([start.statusCode, start.headers['retry-after']]).toEqual([429, '1'])
    expect(await bad.text()).toBe('{"error":"slow down"}')
  })

  it('stops reading the provider while paused (its writes back up), and takes everything after resume', async () => {
    let serverBlocked = false
    const total = 32 * 1024 * 1024
    const origin = await serve((req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      const piece = Buffer.alloc(256 * 1024, 1)
      let sent = 0
      const pump = () => {
        while (sent < total) {
          sent += piece.length
          if (!res.write(piece)) {
            serverBlocked = true
            res.once('drain', pump)
            return
          }
        }
        res.end()
      }
      pump()
    })
    const call = new UpstreamCall(new AbortController().signal)
    dispatch(origin, call)
    await call.started
    let received = 0
    const done = new Promise<void>((resolve, reject) =>
      call.relay(
        (chunk) => {
          received += chunk.length
          call.pause()
        },
        resolve,
        reject,
      ),
    )
    await sleep(200)
    // Paused after its first chunk: the provider could not write it all (the sockets' buffers filled).
    expect(received).toBeLessThan(total)
    expect(serverBlocked).toBe(true)
    const resumer = setInterval(() => call.resume(), 1)
    await done
    clearInterval(resumer)
    expect(received).toBe(total)
  })

  it('aborts when the client goes: before the answer (started rejects) and during its body (relay fails)', async () => {
    const origin = await serve((req, res) => {
      req.resume()
      if (req.url === '/slow') return // never answers
      res.writeHead(200)
      res.write('first')
    })
    const before = new AbortController()
    const waiting = new UpstreamCall(before.signal)
    dispatch(origin, waiting, '/slow')
    setTimeout(() => before.abort(), 20)
    await expect(waiting.started).rejects.toBeInstanceOf(errors.RequestAbortedError)

    const during = new AbortController()
    const streaming = new UpstreamCall(during.signal)
    dispatch(origin, streaming)
    await streaming.started
    const failed = new Promise<Error>((resolve) =>
      streaming.relay(
        () => {},
        () => resolve(new Error('ended')),
        resolve,
      ),
    )
    during.abort()
    expect(await failed).toBeInstanceOf(errors.RequestAbortedError)

    // A signal aborted before the call is made: the call never starts.
    const gone = new AbortController()
    gone.abort()
    const late = new UpstreamCall(gone.signal)
    dispatch(origin, late)
    await expect(late.started).rejects.toBeInstanceOf(errors.RequestAbortedError)
  })

  it('rejects started when the provider cannot be reached', async () => {
    agent = new Agent()
    const call = new UpstreamCall(new AbortController().signal)
    // A port nothing listens on (the agent's own connect fails).
    agent.dispatch({ origin: 'http://127.0.0.1:9', path: '/', method: 'POST', body: Buffer.from('{}') }, call)
    await expect(call.started).rejects.toThrow()
  })
})
