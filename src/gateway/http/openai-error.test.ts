import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { describe, expect, it } from 'vitest'
import { expectOpenAiError } from './expect-openai-error.ts'
import {
  badRequest,
  errorHandler,
  errorResponse,
  GatewayError,
  modelNotFound,
  notFound,
  payloadTooLarge,
  retryAfterSeconds,
  unauthorized,
  upstreamError,
} from './openai-error.ts'
import { requestId } from './request-id.ts'

describe('GatewayError', () => {
  it('always serialises all four keys', () => {
    expect(new GatewayError(400, 'bad').toJSON()).toEqual({
      error: { message: 'bad', type: 'invalid_request_error', param: null, code: null },
    })
    expect(JSON.parse(JSON.stringify(badRequest('bad', 'messages', 'x')))).toEqual({
      error: { message: 'bad', type: 'invalid_request_error', param: 'messages', code: 'x' },
    })
  })

  it('builds the helpers with OpenAI statuses, types and codes', () => {
    expect(notFound('nope')).toMatchObject({ status: 404, type: 'invalid_request_error', code: null })
    expect(unauthorized('who')).toMatchObject({ status: 401, type: 'authentication_error', code: 'invalid_api_key' })
    const missingModel = modelNotFound('llama-9000')
    expect(missingModel).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' })
    expect(missingModel.message).toContain('llama-9000')
    expect(payloadTooLarge(1024)).toMatchObject({ status: 413, code: 'request_too_large' })
    expect(payloadTooLarge(1024).message).toContain('1024')
    expect(upstreamError(503, 'down')).toMatchObject({ status: 503, type: 'server_error', code: 'upstream_error' })
    expect(upstreamError(429, 'slow down', null)).toMatchObject({ type: 'rate_limit_error', code: null })
    expect(upstreamError(400, 'too long', 'context_length_exceeded').code).toBe('context_length_exceeded')
  })

  it('turns an upstream non-error status into 502', () => {
    expect(upstreamError(200, 'garbage').status).toBe(502)
    expect(upstreamError(302, 'redirect').status).toBe(502)
  })
})

describe('errorResponse', () => {
  it('renders JSON with the request id', async () => {
    const res = errorResponse(badRequest('bad', 'n'), 'req_1')
    expect(res.headers.get('x-request-id')).toBe('req_1')
    expect((await expectOpenAiError(res, 400)).param).toBe('n')
  })

  it('hides unknown errors behind a 500 internal_error', async () => {
    const res = errorResponse(new Error('connect ECONNREFUSED http://admin:sk-secret@10.0.0.1'), 'req_2')
    const error = await expectOpenAiError(res, 500, 'internal_error')
    expect(error.message).not.toContain('sk-secret')
    expect(error.message).toContain('req_2')
    expect(errorResponse('a thrown string', 'req_3').status).toBe(500)
  })

  it('keeps the status of hono client errors', async () => {
    const error = await expectOpenAiError(errorResponse(new HTTPException(415, { message: 'no' }), 'r'), 415)
    expect(error.message).toBe('no')
    await expectOpenAiError(errorResponse(new HTTPException(503, { message: 'internals' }), 'r'), 500)
  })

  it('says x-should-retry: false on a 5xx the gateway already retried', () => {
    expect(errorResponse(upstreamError(503, 'down', null, { noRetry: true }), 'r').headers.get('x-should-retry')).toBe(
      'false',
    )
    expect(errorResponse(upstreamError(503, 'down'), 'r').headers.has('x-should-retry')).toBe(false)
  })

  it('always gives a 429 a Retry-After LangChain will honour', () => {
    const plain = errorResponse(upstreamError(429, 'slow down'), 'r')
    expect(plain.headers.get('retry-after')).toBe('1')
    const long = errorResponse(upstreamError(429, 'slow', null, { headers: { 'Retry-After': '3600' } }), 'r')
    expect(long.headers.get('retry-after')).toBe('60')
    const ms = errorResponse(upstreamError(429, 'slow', null, { headers: { 'retry-after-ms': '2500' } }), 'r')
    expect(ms.headers.get('retry-after')).toBe('3')
    expect(ms.headers.has('retry-after-ms')).toBe(false)
  })

  it('keeps the error content-type even if headers say otherwise', () => {
    const err = new GatewayError(400, 'x', { headers: { 'content-type': 'text/html' } })
    expect(errorResponse(err, 'r').headers.get('content-type')).toBe('application/json')
  })
})

describe('retryAfterSeconds', () => {
  it('reads seconds, milliseconds and HTTP dates into 1..60', () => {
    expect(retryAfterSeconds(null, null)).toBe(1)
    expect(retryAfterSeconds(null, '0')).toBe(1)
    expect(retryAfterSeconds(null, '1.2')).toBe(2)
    expect(retryAfterSeconds(null, 'soon')).toBe(1)
    expect(retryAfterSeconds('120000', '5')).toBe(60)
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(retryAfterSeconds(null, 'Thu, 01 Jan 2026 00:00:07 GMT', now)).toBe(7)
  })
})

describe('errorHandler', () => {
  function app(log: string[]) {
    const app = new Hono()
    app.use('*', requestId())
    app.onError(errorHandler((line) => log.push(line)))
    app.get('/gateway', () => {
      throw modelNotFound('m')
    })
    app.get('/bug', () => {
      throw new Error('undefined is not a function, key sk-zg-abcdef')
    })
    return app
  }

  it('answers GatewayErrors without logging them', async () => {
    const log: string[] = []
    const res = await app(log).request('/gateway', { headers: { 'x-request-id': 'trace-1' } })
    expect(res.headers.get('x-request-id')).toBe('trace-1')
    await expectOpenAiError(res, 404, 'model_not_found')
    expect(log).toEqual([])
  })

  it('logs unexpected errors with their request id, and shows the client none of it', async () => {
    const log: string[] = []
    const res = await app(log).request('/bug')
    const error = await expectOpenAiError(res, 500, 'internal_error')
    expect(error.message).not.toContain('sk-zg')
    expect(log).toHaveLength(1)
    expect(log[0]).toContain(res.headers.get('x-request-id'))
    expect(log[0]).toContain('undefined is not a function')
  })
})
