import { describe, expect, it } from 'vitest'
import { openAiParam, readUpstreamError } from './upstream-error-body.ts'

const vllm = (message: string, param: string | null = null) =>
  JSON.stringify({ error: { message, type: 'BadRequestError', param, code: 400 } })

describe('readUpstreamError', () => {
  it('keeps an OpenAI-shaped body as it is, with its param and code', () => {
    const body = JSON.stringify({
      error: { message: 'Unknown parameter', type: 'invalid_request_error', param: 'foo', code: 'unknown_parameter' },
    })
    expect(readUpstreamError(body)).toEqual({ message: 'Unknown parameter', param: 'foo', code: 'unknown_parameter' })
  })

  it("drops vLLM's numeric code and rewords zod's bounds with the field as param", () => {
    expect(readUpstreamError(vllm('top_logprobs: Too big: expected number to be <=20', 'top_logprobs'))).toEqual({
      message: "Invalid 'top_logprobs': expected a value <= 20.",
      param: 'top_logprobs',
      code: null,
    })
    expect(readUpstreamError(vllm('dimensions: Too small: expected number to be >0')).message).toBe(
      "Invalid 'dimensions': expected a value > 0.",
    )
    expect(readUpstreamError(vllm('input: Too small: expected string to have >=1 characters')).message).toBe(
      "Invalid 'input': expected >= 1 characters.",
    )
  })

  it('names nested fields as OpenAI does, and lists the allowed values', () => {
    const read = readUpstreamError(
      vllm('messages.0.role: Invalid option: expected one of "system"|"user"|"assistant"', 'messages.0.role'),
    )
    expect(read).toEqual({
      message: "Invalid value for 'messages[0].role'. Supported values are: 'system', 'user', 'assistant'.",
      param: 'messages[0].role',
      code: null,
    })
    expect(readUpstreamError(vllm('n: Invalid input: expected number, received string')).message).toBe(
      "Invalid type for 'n': expected number, but got string instead.",
    )
  })

  it("reads pydantic's issues: FastAPI's detail list and vLLM's repr in a message", () => {
    const fastapi = JSON.stringify({
      detail: [
        { type: 'less_than_equal', loc: ['body', 'temperature'], msg: 'Input should be less than or equal to 2' },
      ],
    })
    expect(readUpstreamError(fastapi)).toEqual({
      message: "Invalid 'temperature': expected a value <= 2.",
      param: 'temperature',
      code: null,
    })
    const repr = vllm(
      "[{'type': 'greater_than', 'loc': ('body', 'messages', 0, 'content'), 'msg': 'Input should be greater than 0', 'input': 0}]",
    )
    expect(readUpstreamError(repr)).toEqual({
      message: "Invalid 'messages[0].content': expected a value > 0.",
      param: 'messages[0].content',
      code: null,
    })
  })

  it("reads 0G brokers' string errors, FastAPI's string detail, and plain text", () => {
    expect(readUpstreamError('{"error":"insufficient balance"}').message).toBe('insufficient balance')
    expect(readUpstreamError('{"detail":"Not Found"}').message).toBe('Not Found')
    expect(readUpstreamError('<html>Bad Gateway</html>').message).toBe('<html>Bad Gateway</html>')
    expect(readUpstreamError('').message).toBe('no error body')
    expect(readUpstreamError('x'.repeat(10_000)).message).toHaveLength(2_000)
  })

  it('leaves ordinary messages alone, even with a colon in them', () => {
    const text = "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens"
    expect(readUpstreamError(vllm(text))).toEqual({ message: text, param: null, code: null })
    expect(readUpstreamError(vllm('Error: the backend is overloaded'))).toEqual({
      message: 'Error: the backend is overloaded',
      param: null,
      code: null,
    })
    // A field the backend named, with wording of its own.
    expect(readUpstreamError(vllm('tools: not supported by this model', 'tools'))).toEqual({
      message: "Invalid 'tools': not supported by this model",
      param: 'tools',
      code: null,
    })
  })
})

describe('openAiParam', () => {
  it('writes indexes in brackets', () => {
    expect(openAiParam(['messages', 0, 'content', 1, 'text'])).toBe('messages[0].content[1].text')
    expect(openAiParam(['tools', '2', 'function'])).toBe('tools[2].function')
  })
})
