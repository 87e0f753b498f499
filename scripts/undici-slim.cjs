'use strict'
/**
 * What the bundle uses of undici, and only that: undici's index loads fetch, WebSocket, the mock agents and the
 * cache stores as well, some 4 MB of a process's memory that the gateway never calls. scripts/build.ts aliases
 * `undici` to this file. The sources import `undici` itself; test/bundle.test.ts runs the bundle end to end.
 */
const Dispatcher = require('undici/lib/dispatcher/dispatcher')
const Agent = require('undici/lib/dispatcher/agent')
const errors = require('undici/lib/core/errors')
const api = require('undici/lib/api')
const { getGlobalDispatcher } = require('undici/lib/global')

// undici's index does the same: the request/stream/pipeline methods live on every dispatcher.
Object.assign(Dispatcher.prototype, api)

/** `request(url, options)`: the one form the sources use (an absolute URL string and an options object). */
function request(url, options = {}) {
  const { dispatcher = getGlobalDispatcher(), ...rest } = options
  const target = new URL(url)
  return dispatcher.request({
    ...rest,
    origin: target.origin,
    path: `${target.pathname}${target.search}`,
    method: rest.method || (rest.body ? 'PUT' : 'GET'),
  })
}

module.exports = { Agent, Dispatcher, errors, request }
