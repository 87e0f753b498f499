import { describe, expect, it } from 'vitest'
import { GatewayError } from './openai-error.ts'
import { MAX_SPEECH_INPUT, validateSpeech } from './validate.ts'

/** The 400 the validator throws, as a plain object. */
function rejection(body: Record<string, unknown>) {
  try {
    validateSpeech(body)
  } catch (err) {
    if (err instanceof GatewayError)
      return { status: err.status, param: err.param, code: err.code, message: err.message }
    throw err
  }
  throw new Error('expected the body to be rejected')
}

const ok = { model: 'dev/tts', input: 'Hello.', voice: 'alloy' }

describe('validateSpeech', () => {
  it('reads what routing needs; mp3 is the default format, as at OpenAI', () => {
    expect(validateSpeech(ok)).toEqual({ model: 'dev/tts', stream: false, includeUsage: false, responseFormat: 'mp3' })
    expect(
      validateSpeech({
        ...ok,
        voice: { id: 'voice_1234' },
        response_format: 'wav',
        speed: 0.25,
        instructions: 'Cheerfully.',
        stream_format: 'audio',
        max_duration: 30,
        unknown_extra: true,
      }).responseFormat,
    ).toBe('wav')
    // 4096 characters, some of them outside the BMP: characters are counted, not UTF-16 units.
    expect(() => validateSpeech({ ...ok, input: '😀'.repeat(MAX_SPEECH_INPUT) })).not.toThrow()
  })

  it('refuses what OpenAI refuses, naming the parameter', () => {
    const { model: _, ...noModel } = ok
    const { input: __, ...noInput } = ok
    const { voice: ___, ...noVoice } = ok
    expect(rejection(noModel)).toMatchObject({
      status: 400,
      param: 'model',
      message: "Missing required parameter: 'model'.",
    })
    expect(rejection(noInput)).toMatchObject({ param: 'input', message: "Missing required parameter: 'input'." })
    expect(rejection(noVoice)).toMatchObject({ param: 'voice' })
    expect(rejection({ ...ok, input: '' })).toMatchObject({ param: 'input' })
    expect(rejection({ ...ok, input: 42 })).toMatchObject({ param: 'input', message: /expected a string/ })
    expect(rejection({ ...ok, input: 'x'.repeat(MAX_SPEECH_INPUT + 1) })).toMatchObject({
      param: 'input',
      code: 'string_above_max_length',
      message: /maximum length 4096, but got a string with length 4097/,
    })
    expect(rejection({ ...ok, voice: '' })).toMatchObject({ param: 'voice' })
    expect(rejection({ ...ok, voice: { name: 'x' } })).toMatchObject({ param: 'voice' })
    expect(rejection({ ...ok, response_format: 'ogg' })).toMatchObject({
      param: 'response_format',
      message: /Supported values are: 'mp3', 'opus', 'aac', 'flac', 'wav', 'pcm'/,
    })
    expect(rejection({ ...ok, speed: 0.2 })).toMatchObject({ param: 'speed', message: /expected a value >= 0.25/ })
    expect(rejection({ ...ok, speed: 4.5 })).toMatchObject({ param: 'speed', message: /expected a value <= 4/ })
    expect(rejection({ ...ok, speed: '1' })).toMatchObject({ param: 'speed' })
    expect(rejection({ ...ok, max_duration: 0 })).toMatchObject({ param: 'max_duration' })
    expect(rejection({ ...ok, stream_format: 'sse' })).toMatchObject({
      param: 'stream_format',
      code: 'unsupported_value',
    })
    expect(rejection({ ...ok, stream_format: 'chunks' })).toMatchObject({ param: 'stream_format' })
  })
})
