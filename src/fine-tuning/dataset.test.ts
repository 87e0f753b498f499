import { describe, expect, it } from 'vitest'
import { checkChatJsonl } from './dataset.ts'

const example = (answer = 'Ahoy.') =>
  JSON.stringify({
    messages: [
      { role: 'system', content: 'You are a sailor.' },
      { role: 'user', content: 'Hello?' },
      { role: 'assistant', content: answer },
    ],
  })
const file = (lines: string[]) => `${lines.join('\n')}\n`
const ten = Array.from({ length: 10 }, (_, i) => example(`Answer ${i}.`))

describe('checkChatJsonl', () => {
  it('accepts ten good examples, LF or CRLF, as text or bytes, with or without a final newline', () => {
    expect(checkChatJsonl(file(ten))).toEqual({ examples: 10, issues: [] })
    expect(checkChatJsonl(ten.join('\r\n'))).toEqual({ examples: 10, issues: [] })
    expect(checkChatJsonl(new TextEncoder().encode(`\uFEFF${file(ten)}`))).toEqual({ examples: 10, issues: [] })
    expect(checkChatJsonl(`\uFEFF${file(ten)}`)).toEqual({ examples: 10, issues: [] })
  })

  it("accepts OpenAI's richer shapes: content parts, names, weights, tool calls and tools", () => {
    const rich = JSON.stringify({
      messages: [
        { role: 'system', content: [{ type: 'text', text: 'Be brief.' }] },
        {
          role: 'user',
          name: 'ann',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
          ],
        },
        { role: 'assistant', weight: 0, content: 'A draft.' },
        {
          role: 'assistant',
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'look', arguments: '{"x":1}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'a boat' },
        { role: 'assistant', weight: 1, content: 'A boat.' },
      ],
      tools: [{ type: 'function', function: { name: 'look', parameters: { type: 'object' } } }],
      parallel_tool_calls: false,
    })
    expect(checkChatJsonl(file([...ten.slice(1), rich]))).toEqual({ examples: 10, issues: [] })
  })

  it('reports each bad line with its 1-based number and what is wrong', () => {
    const lines = [
      ...ten,
      '',
      '{"messages": [',
      '[1, 2]',
      '{"prompt": "a", "completion": "b"}',
      '{"messages": "hi"}',
      '{"messages": []}',
      '{"messages": [{"role": "bot", "content": "x"}]}',
      '{"messages": [{"role": "user", "content": "only a question"}]}',
      '{"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]}',
      '{"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}',
      '{"messages": [{"role": "assistant", "content": "x", "weight": 2}]}',
      '{"messages": [{"role": "assistant", "content": "x", "weight": 0}]}',
      '{"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "x"}]}',
      '{"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}]}',
      '{"messages": [{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]}',
      '{"messages": [{"role": "assistant", "content": "x"}], "tools": [{"type": "function"}]}',
    ]
    const { examples, issues } = checkChatJsonl(file(lines))
    expect(examples).toBe(10)
    expect(issues).toEqual([
      { line: 11, message: 'line 11 is blank; every line must be one JSON example' },
      { line: 12, message: expect.stringMatching(/^line 12 is not valid JSON \(.+\)$/) },
      { line: 13, message: 'line 13: an example must be a JSON object with a "messages" array, not an array' },
      { line: 14, message: 'line 14: the example has no "messages" array' },
      { line: 15, message: 'line 15: "messages" must be an array, not a string' },
      { line: 16, message: 'line 16: "messages" is empty' },
      { line: 17, message: 'line 17: messages[0].role must be one of system, user, assistant, tool (got "bot")' },
      { line: 18, message: 'line 18: the example has no assistant message to learn from' },
      {
        line: 19,
        message: 'line 19: messages[0].content must be a string or an array of content parts, not a number',
      },
      { line: 20, message: 'line 20: messages[0].content is missing' },
      { line: 21, message: 'line 21: messages[0].weight must be 0 or 1' },
      { line: 22, message: 'line 22: every assistant message has weight 0, so there is nothing to train on' },
      { line: 23, message: 'line 23: messages[0].tool_call_id must name the tool call this message answers' },
      {
        line: 24,
        message: 'line 24: messages[0].tool_calls[0].function.arguments must be a string (JSON text)',
      },
      { line: 25, message: 'line 25: messages[0].content[0] must be a content part of type text' },
      { line: 26, message: 'line 26: tools[0].function.name must be a non-empty string' },
    ])
  })

  it('refuses too few examples (OpenAI: at least 10), an empty file, too many and too-long lines', () => {
    expect(checkChatJsonl(file(ten.slice(0, 9))).issues).toEqual([
      { line: 0, message: 'the file has 9 valid examples; it needs at least 10' },
    ])
    expect(checkChatJsonl('').issues).toEqual([
      { line: 0, message: 'the file is empty; it needs at least 10 examples' },
    ])
    expect(checkChatJsonl(file(ten), { maxExamples: 8 }).issues).toEqual([
      { line: 9, message: 'line 9: more than 8 examples' },
    ])
    const long = example('x'.repeat(300))
    const result = checkChatJsonl(file([...ten, long]), { maxLineBytes: 200 })
    expect(result).toEqual({
      examples: 10,
      issues: [{ line: 11, message: `line 11 is ${Buffer.byteLength(long)} bytes, over the limit of 200` }],
    })
  })

  it('reports invalid UTF-8 by line, and sums up issues past the first 20', () => {
    const bytes = Buffer.concat([Buffer.from(file(ten)), Buffer.from([0x7b, 0xff, 0x7d, 0x0a])])
    expect(checkChatJsonl(bytes).issues).toEqual([{ line: 11, message: 'line 11 is not valid UTF-8' }])
    const bad = Array.from({ length: 25 }, () => '{}')
    const { issues } = checkChatJsonl(file([...ten, ...bad]))
    expect(issues).toHaveLength(21)
    expect(issues[19]!.line).toBe(30)
    expect(issues[20]).toEqual({ line: 0, message: '5 more issues not listed' })
  })
})
