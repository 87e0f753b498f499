import { describe, expect, it } from 'vitest'
import { DatasetError, readTrainingExamples, readTrainingTexts } from './examples.ts'

describe("readTrainingExamples (0G's three formats)", () => {
  it('chat messages: one example per trained assistant turn, prompted by the conversation before it', () => {
    const line = JSON.stringify({
      messages: [
        { role: 'system', content: 'Be a sailor.' },
        { role: 'user', content: [{ type: 'text', text: 'Wind?' }] },
        { role: 'assistant', content: 'Draft.', weight: 0 },
        { role: 'assistant', content: 'Fair winds.' },
        { role: 'user', content: 'And now?' },
        { role: 'assistant', content: [{ type: 'text', text: 'Hoist the sails.' }] },
      ],
    })
    expect(readTrainingExamples(`${line}\n`)).toEqual([
      { prompt: 'system: Be a sailor.\nuser: Wind?\nassistant: Draft.', completion: 'Fair winds.' },
      {
        prompt: 'system: Be a sailor.\nuser: Wind?\nassistant: Draft.\nassistant: Fair winds.\nuser: And now?',
        completion: 'Hoist the sails.',
      },
    ])
  })

  it('instruction / input / output, and plain text; blank lines and CRLF are fine', () => {
    const text = [
      '{"instruction": "Translate", "input": "hello", "output": "ahoy"}',
      '',
      '{"instruction": "Greet", "output": "ahoy"}\r',
      '{"text": "The tide turns."}',
    ].join('\n')
    expect(readTrainingExamples(text)).toEqual([
      { prompt: 'Translate\n\nhello', completion: 'ahoy' },
      { prompt: 'Greet', completion: 'ahoy' },
      { prompt: '', completion: 'The tide turns.' },
    ])
  })

  it('throws DatasetError naming every bad line', () => {
    const text = [
      '{"text": "ok"}',
      'nope',
      '{"instruction": "x"}',
      '{"messages": [{"role": "user", "content": "q"}]}',
      '{}',
    ].join('\n')
    let error: unknown
    try {
      readTrainingExamples(text)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(DatasetError)
    expect((error as DatasetError).issues.map((i) => i.line)).toEqual([2, 3, 4, 5])
    expect((error as DatasetError).message).toContain('line 3: an instruction record needs a string "output"')
    expect(() => readTrainingExamples('\n\n')).toThrow('the dataset has no examples')
    expect(() => readTrainingTexts('nope')).toThrow(DatasetError)
  })

  it('readTrainingTexts: each record once, a conversation whole', () => {
    const chat = JSON.stringify({
      messages: [
        { role: 'user', content: 'Wind?' },
        { role: 'assistant', content: 'Fair.' },
        { role: 'assistant', content: 'Very fair.' },
      ],
    })
    expect(readTrainingTexts(`${chat}\n{"text": "Tide."}\n{"instruction": "Greet", "output": "Ahoy"}`)).toEqual([
      'user: Wind?\nassistant: Fair.\nassistant: Very fair.',
      'Tide.',
      'Greet\nAhoy',
    ])
  })
})
