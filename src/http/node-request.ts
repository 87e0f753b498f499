import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Context } from 'hono'

/**
 * The Node side of a request under @hono/node-server, read directly where the web wrappers cost more than they
 * give. A request run cold (one at a time, its code and data out of the CPU caches since the last one) pays for
 * every object and every layer it touches: a header read through `c.req.header()` builds the lightweight request's
 * header view and checks the name on every call, and `c.req.raw.signal` an AbortController whose EventTarget
 * listeners undici then adds and removes. Both have a Node equivalent already at hand. Outside @hono/node-server
 * (the app called through fetch()), these fall back to the web objects.
 */

/** The Node response under @hono/node-server, to write a stream to directly; absent when called through fetch(). */
export function nodeResponse(c: Context): ServerResponse | undefined {
  return (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing
}

/** The Node request under @hono/node-server; absent when the app is called through fetch(). */
export function nodeRequest(c: Context): IncomingMessage | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
}

/**
 * A request header by its lower-case name. Node's parser has the headers in an object already: repeated ones
 * joined with ", " (a few, such as authorization, keep their first value), values trimmed, and a value with a
 * control character refused with a 400 before the request gets here, which is what `c.req.header()` answers too.
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = nodeRequest(c)
  if (!incoming) return c.req.header(name)
  const value = incoming.headers[name]
  return typeof value === 'string' ? value : value?.join(', ')
}

/** What a forwarded call is cancelled by: undici takes an AbortSignal or an EventEmitter that emits 'abort'. */
export type ClientSignal = AbortSignal | ClientGone

/**
 * Emits 'abort' (once) when the client's connection closes before its response was finished. Its state is `gone`,
 * not `aborted`: undici takes anything with an `aborted` property for an AbortSignal, and Node refuses any other.
 */
export class ClientGone extends EventEmitter {
  gone = false

  constructor(outgoing: ServerResponse) {
    super()
    outgoing.once('close', () => {
      if (outgoing.writableFinished) return
      this.gone = true
      this.emit('abort')
    })
  }
}

/** Aborted when the client goes away: the Node response's close under @hono/node-server, else the request's signal. */
export function clientSignal(c: Context): ClientSignal {
  const outgoing = nodeResponse(c)
  return outgoing ? new ClientGone(outgoing) : c.req.raw.signal
}

/** Whether the client went away. */
export function clientAborted(signal: ClientSignal): boolean {
  return signal instanceof ClientGone ? signal.gone : signal.aborted
}
