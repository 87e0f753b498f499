import { describe, expect, it } from 'vitest'
import { valueForSchema } from './json-value.ts'
import { seededRng } from './rng.ts'

type Person = {
  name: string
  age: number
  score: number
  active: unknown
  unit: string
  when: string
  tags: string[]
  nickname: unknown
  address: { city: unknown }
}

describe('valueForSchema', () => {
  it('fills every property with a value of the right type and honours enums and bounds', () => {
    const value = valueForSchema(
      {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 3, maxLength: 12 },
          age: { type: 'integer', minimum: 18, maximum: 20 },
          score: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
          active: { type: 'boolean' },
          unit: { type: 'string', enum: ['c', 'f'] },
          when: { type: 'string', format: 'date-time' },
          tags: { type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 2 },
          nickname: { anyOf: [{ type: 'string' }, { type: 'null' }] },
          address: { $ref: '#/$defs/address' },
        },
        required: ['name', 'age', 'extra'],
        $defs: { address: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
      },
      seededRng('test'),
    ) as Person
    expect(Array.from(value.name).length).toBeGreaterThanOrEqual(3)
    expect(Array.from(value.name).length).toBeLessThanOrEqual(12)
    expect(Number.isInteger(value.age)).toBe(true)
    expect(value.age).toBeGreaterThanOrEqual(18)
    expect(value.age).toBeLessThanOrEqual(20)
    expect(value.score).toBeGreaterThan(0)
    expect(value.score).toBeLessThan(1)
    expect(typeof value.active).toBe('boolean')
    expect(['c', 'f']).toContain(value.unit)
    expect(new Date(value.when).toISOString()).toBe(value.when)
    expect(value.tags).toHaveLength(2)
    expect(typeof value.nickname).toBe('string')
    expect(typeof value.address.city).toBe('string')
    expect(value).toHaveProperty('extra')
  })

  it('terminates on recursive schemas', () => {
    const tree = {
      $ref: '#/$defs/node',
      $defs: { node: { type: 'object', properties: { child: { $ref: '#/$defs/node' } } } },
    }
    expect(JSON.stringify(valueForSchema(tree, seededRng('t')))).toContain('child')
  })

  it('is deterministic for a given seed', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'number' } } }
    expect(valueForSchema(schema, seededRng('x'))).toEqual(valueForSchema(schema, seededRng('x')))
  })
})
