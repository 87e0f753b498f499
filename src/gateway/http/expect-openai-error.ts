import { expect } from 'vitest'

type OpenAiErrorBody = { error: { message: string; type: string; param: string | null; code: string | null } }

/**
 * Test support: asserts the error contract every client relies on (architecture.md, openai-clients.md §4): the
 * status, JSON content-type, an x-request-id, and exactly the four `error` keys. Returns the error for more checks.
 */
export async function expectOpenAiError(
  res: Response,
  status: number,
  code?: string | null,
): Promise<OpenAiErrorBody['error']> {
  expect(res.status).toBe(status)
  expect(res.headers.get('content-type')).toMatch(/^application\/json/)
  expect(res.headers.get('x-request-id')).toMatch(/^[A-Za-z0-9._:-]{1,128}$/)
  const body = (await res.json()) as OpenAiErrorBody
  expect(Object.keys(body)).toEqual(['error'])
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type'])
  expect(typeof body.error.message).toBe('string')
  expect(typeof body.error.type).toBe('string')
  if (code !== undefined) expect(body.error.code).toBe(code)
  return body.error
}
