import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { streamSink } from './stream-sink.ts'

let server: Server | undefined
afterEach(async () => {
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined))
  server = undefined
})

/** Serves one stream through streamSink: two events, written from a promise continuation as the relays do. */
async function serve(inspect: (corkedAfterWrite: number[]) => void): Promise<string> {
  server = createServer(async (_req, res) => {
    await Promise.resolve()
    const { sink } = streamSink(res, 200, { 'content-type': 'text/event-stream' }, { drain() {}, gone() {} })
    const corked: number[] = []
    sink.write(Buffer.from('data: 1\n\n'))
    corked.push(res.socket?.writableCorked ?? -1)
    sink.write(Buffer.from('data: 2\n\n'))
    corked.push(res.socket?.writableCorked ?? -1)
    inspect(corked)
    setTimeout(() => sink.end({ 'x-done': 'yes' }), 5)
  })
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  const { port } = server!.address() as AddressInfo
  const res = await fetch(`http://127.0.0.1:${port}/`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe('text/event-stream')
  return res.text()
}

describe('streamSink under node:http', () => {
  it('sends the status, headers and first event at once, not at the next tick', async () => {
    let corked: number[] = []
    const body = await serve((c) => {
      corked = c
    })
    expect(body).toBe('data: 1\n\ndata: 2\n\n')
    // The first write leaves the socket uncorked (gone to the kernel); a later one in the same turn is batched.
    expect(corked).toEqual([0, 1])
  })
})
