import { describe, expect, it } from 'vitest'
import { decode } from './decode.ts'
import { tokenize } from './tokenizer.ts'

const TEXT = 'The quiet garden listens. The river answers!'

describe('decode', () => {
  it('emits the whole text as tokens and finishes with stop', () => {
    const out = decode(TEXT, 100)
    expect(out.pieces).toEqual(tokenize(TEXT))
    expect(out).toMatchObject({ completionTokens: tokenize(TEXT).length, finishReason: 'stop', stopString: null })
  })

  it('cuts at max tokens with finish reason length', () => {
    const out = decode(TEXT, 3)
    expect(out.pieces).toEqual(tokenize(TEXT).slice(0, 3))
    expect(out).toMatchObject({ completionTokens: 3, finishReason: 'length' })
  })

  it('stops before a stop string that straddles tokens, counting the tokens generated', () => {
    const out = decode(TEXT, 100, ['garden list'])
    expect(out.pieces.join('')).toBe('The quiet ')
    expect(out.finishReason).toBe('stop')
    expect(out.stopString).toBe('garden list')
    // "The", " qui", "et", " gar", "den", " lis", "tens": the stop string ends inside the seventh token.
    expect(out.completionTokens).toBe(7)
  })

  it('uses the earliest of several stop strings', () => {
    expect(decode(TEXT, 100, ['river', '.']).pieces.join('')).toBe('The quiet garden listens')
  })
})
