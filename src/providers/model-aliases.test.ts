import { describe, expect, it } from 'vitest'
import { ModelAliases } from './model-aliases.ts'
import { serviceTypeOfEndpoint } from './service-types.ts'

const catalog: Record<string, Array<{ serviceType: string }>> = {
  'qwen-7b': [{ serviceType: 'chatbot' }],
  'flux-gen': [{ serviceType: 'text-to-image' }],
  'flux-edit': [{ serviceType: 'image-editing' }],
}
const lookup = (id: string) => catalog[id] ?? []

describe('model aliases', () => {
  it('leaves a model that is no alias as it is', () => {
    const aliases = ModelAliases.parse(['gpt-4o-mini=qwen-7b'])
    expect(aliases.resolve('qwen-7b', 'chat/completions', lookup)).toBe('qwen-7b')
    expect(aliases.resolve('unknown', 'chat/completions', lookup)).toBe('unknown')
  })

  it('resolves an alias to its target', () => {
    const aliases = ModelAliases.parse(['gpt-4o-mini = qwen-7b'])
    expect(aliases.resolve('gpt-4o-mini', 'chat/completions', lookup)).toBe('qwen-7b')
  })

  it('picks the target whose service type fits the endpoint', () => {
    const aliases = ModelAliases.parse(['gpt-image-1=flux-gen', 'gpt-image-1=flux-edit'])
    expect(aliases.resolve('gpt-image-1', 'images/generations', lookup)).toBe('flux-gen')
    expect(aliases.resolve('gpt-image-1', 'images/edits', lookup)).toBe('flux-edit')
    // No target of the right kind: a served one, so the provider words the refusal.
    expect(aliases.resolve('gpt-image-1', 'chat/completions', lookup)).toBe('flux-gen')
  })

  it('falls back to the first target when none is served, so the error names the real model', () => {
    const aliases = ModelAliases.parse(['gpt-4o=missing-a', 'gpt-4o=missing-b'])
    expect(aliases.resolve('gpt-4o', 'chat/completions', lookup)).toBe('missing-a')
  })

  it('lists aliases sorted, each target once', () => {
    const aliases = ModelAliases.parse(['b=qwen-7b', 'a=flux-gen', 'a=flux-edit', 'a=flux-gen'])
    expect(aliases.list()).toEqual([
      { alias: 'a', targets: ['flux-gen', 'flux-edit'] },
      { alias: 'b', targets: ['qwen-7b'] },
    ])
    expect(aliases.size).toBe(2)
  })

  it('refuses malformed specs and self-references', () => {
    expect(() => ModelAliases.parse(['gpt-4o'])).toThrow(/alias=target/)
    expect(() => ModelAliases.parse(['=qwen'])).toThrow(/alias=target/)
    expect(() => ModelAliases.parse(['gpt-4o='])).toThrow(/alias=target/)
    expect(() => ModelAliases.parse(['x=x'])).toThrow(/names itself/)
  })

  it('maps each OpenAI endpoint to the 0G service type that serves it', () => {
    expect(serviceTypeOfEndpoint('chat/completions')).toBe('chatbot')
    expect(serviceTypeOfEndpoint('audio/speech')).toBe('audio-generation')
    expect(serviceTypeOfEndpoint('images/edits')).toBe('image-editing')
    expect(serviceTypeOfEndpoint('videos')).toBeUndefined()
  })
})
