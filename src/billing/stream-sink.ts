import type { ServerResponse } from 'node:http'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'

/**
 * Where a relayed event stream goes, the same for the gateway and the provider node. `write` answers false while
 * the client is not keeping up (pause the source until `drain`); `end` may carry trailers, which go out where the
 * transport has them (a chunked HTTP/1.1 response under Node) and are dropped elsewhere.
 */
export type StreamSink = {
  write(bytes: Uint8Array): boolean
  end(trailers?: Record<string, string>): void
}

export type StreamSinkHooks = {
  /** The client can take more: resume the source. */
  drain(): void
  /** The client went away before the end: stop the source. */
  gone(): void
}

/**
 * Writes a stream straight into a Node response (no web-stream hops per event). The status and headers go out
 * with the first write, so a client wakes up once for both; if nothing is written in the current turn of the event
 * loop (a slow first event), they go out on their own.
 */
function nodeStreamSink(
  outgoing: ServerResponse,
  status: number,
  headers: Record<string, string>,
  hooks: StreamSinkHooks,
): StreamSink {
  outgoing.writeHead(status, headers)
  const open = () => !outgoing.destroyed && !outgoing.writableEnded
  let flush: NodeJS.Immediate | undefined = setImmediate(() => {
    flush = undefined
    if (open()) outgoing.flushHeaders()
  })
  const sent = () => {
    if (flush) clearImmediate(flush)
    flush = undefined
  }
  outgoing.on('drain', hooks.drain)
  outgoing.on('close', () => {
    sent()
    if (!outgoing.writableFinished) hooks.gone()
  })
  outgoing.on('error', hooks.gone)
  let first = true
  return {
    write(bytes) {
      sent()
      if (!open()) return true
      const ok = outgoing.write(bytes)
      if (first) {
        first = false
        // Node's write() corks the socket until the next tick, to send the chunk's framing with it. Called from a
        // promise continuation (an upstream answer awaited), as the first write is, that tick comes only once every
        // continuation queued behind it has run: here the whole way back out through the app, some 0.1 ms of a
        // cold call. The status, headers and first event leave now; later writes, from socket reads, keep Node's
        // batching.
        outgoing.socket?.uncork()
      }
      return ok
    },
    end(trailers) {
      sent()
      if (!open()) return
      if (trailers) outgoing.addTrailers(trailers)
      outgoing.end()
    },
  }
}

/**
 * A web ReadableStream fed through a sink (an app called through fetch(), not under @hono/node-server). Trailers
 * have no place in a web Response and are dropped.
 */
function webStreamSink(hooks: StreamSinkHooks): { stream: ReadableStream<Uint8Array>; sink: StreamSink } {
  let controller!: ReadableStreamDefaultController<Uint8Array>
  let closed = false
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c
    },
    pull() {
      hooks.drain()
    },
    cancel() {
      closed = true
      hooks.gone()
    },
  })
  const sink: StreamSink = {
    write(bytes) {
      if (closed) return true
      controller.enqueue(bytes)
      return (controller.desiredSize ?? 0) > 0
    },
    end() {
      if (closed) return
      closed = true
      controller.close()
    },
  }
  return { stream, sink }
}

/**
 * A relayed stream's sink and the Response for the handler to return. Under @hono/node-server (`outgoing`, see
 * `nodeResponse` in src/http/node-request.ts) the stream is written straight to the Node response, which the
 * returned marker tells the server; otherwise it feeds a web stream, the returned Response's body.
 */
export function streamSink(
  outgoing: ServerResponse | undefined,
  status: number,
  headers: Record<string, string>,
  hooks: StreamSinkHooks,
): { sink: StreamSink; response: Response } {
  if (outgoing) return { sink: nodeStreamSink(outgoing, status, headers, hooks), response: RESPONSE_ALREADY_SENT }
  const web = webStreamSink(hooks)
  return { sink: web.sink, response: new Response(web.stream, { status, headers }) }
}
