import { phrase } from './prose.ts'
import type { Rng } from './rng.ts'

type Schema = Record<string, unknown>

/** Deeper than this, generation stops recursing (recursive $refs) and writes the simplest value the type allows. */
const MAX_DEPTH = 6

/**
 * A deterministic JSON value that satisfies the common JSON Schema keywords: what tool arguments and structured
 * outputs (`json_schema`, `structured_outputs.json`) need from a dev model. Every property is filled in, required or
 * not; `pattern` and `not` are not honoured (nothing small can honour them in general).
 */
export function valueForSchema(schema: unknown, rng: Rng): unknown {
  return generate(asSchema(schema), asSchema(schema), rng, 0, '')
}

function asSchema(value: unknown): Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Schema) : {}
}

function generate(schema: Schema, root: Schema, rng: Rng, depth: number, name: string): unknown {
  if ('const' in schema) return schema.const
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return rng.pick(schema.enum)
  if (typeof schema.$ref === 'string') {
    const target = resolveRef(root, schema.$ref)
    return depth >= MAX_DEPTH ? simplest(target) : generate(target, root, rng, depth + 1, name)
  }
  const options = (schema.anyOf ?? schema.oneOf) as unknown[] | undefined
  if (Array.isArray(options) && options.length > 0) {
    const nonNull = options.map(asSchema).find((o) => o.type !== 'null')
    return nonNull ? generate(nonNull, root, rng, depth + 1, name) : null
  }
  if (Array.isArray(schema.allOf)) {
    return generate(mergeAll(schema, schema.allOf.map(asSchema)), root, rng, depth, name)
  }
  switch (typeOf(schema)) {
    case 'object':
      return depth >= MAX_DEPTH ? {} : objectValue(schema, root, rng, depth)
    case 'array':
      return depth >= MAX_DEPTH ? [] : arrayValue(schema, root, rng, depth, name)
    case 'string':
      return stringValue(schema, rng, name)
    case 'integer':
      return numberValue(schema, rng, true)
    case 'number':
      return numberValue(schema, rng, false)
    case 'boolean':
      return rng.next() < 0.5
    case 'null':
      return null
    default:
      return phrase(rng, 2)
  }
}

function typeOf(schema: Schema): string | undefined {
  const { type } = schema
  if (Array.isArray(type)) return type.find((t) => t !== 'null') ?? 'null'
  if (typeof type === 'string') return type
  if (schema.properties) return 'object'
  if (schema.items) return 'array'
  return undefined
}

function objectValue(schema: Schema, root: Schema, rng: Rng, depth: number): Record<string, unknown> {
  const properties = asSchema(schema.properties)
  const result: Record<string, unknown> = {}
  for (const [key, sub] of Object.entries(properties)) result[key] = generate(asSchema(sub), root, rng, depth + 1, key)
  // Required names without a property schema still get a value.
  if (Array.isArray(schema.required)) {
    for (const key of schema.required) if (typeof key === 'string' && !(key in result)) result[key] = phrase(rng, 2)
  }
  return result
}

function arrayValue(schema: Schema, root: Schema, rng: Rng, depth: number, name: string): unknown[] {
  const min = typeof schema.minItems === 'number' ? schema.minItems : 1
  const max = typeof schema.maxItems === 'number' ? schema.maxItems : Math.max(min, 3)
  const length = min + rng.int(Math.min(max, min + 2) - min + 1)
  const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems.map(asSchema) : []
  const items = asSchema(schema.items)
  return Array.from({ length: Math.max(length, prefix.length) }, (_, i) =>
    generate(prefix[i] ?? items, root, rng, depth + 1, name),
  )
}

const FORMATS: Record<string, (rng: Rng) => string> = {
  'date-time': (rng) => new Date(Date.UTC(2026, rng.int(12), 1 + rng.int(28), rng.int(24), rng.int(60))).toISOString(),
  date: (rng) => new Date(Date.UTC(2026, rng.int(12), 1 + rng.int(28))).toISOString().slice(0, 10),
  time: (rng) => `${pad(rng.int(24))}:${pad(rng.int(60))}:${pad(rng.int(60))}`,
  email: (rng) => `dev${rng.int(1000)}@example.com`,
  uri: (rng) => `https://example.com/dev/${rng.int(1000)}`,
  url: (rng) => `https://example.com/dev/${rng.int(1000)}`,
  uuid: (rng) =>
    Array.from({ length: 16 }, (_, i) => {
      const byte = i === 6 ? 0x40 | rng.int(16) : i === 8 ? 0x80 | rng.int(64) : rng.int(256)
      return (i === 4 || i === 6 || i === 8 || i === 10 ? '-' : '') + byte.toString(16).padStart(2, '0')
    }).join(''),
}

function pad(n: number): string {
  return String(n).padStart(2, '0')
}

function stringValue(schema: Schema, rng: Rng, name: string): string {
  const format = typeof schema.format === 'string' ? FORMATS[schema.format] : undefined
  if (format) return format(rng)
  let text = name && rng.next() < 0.5 ? `${name} ${phrase(rng, 2)}` : phrase(rng, 1 + rng.int(3))
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : Number.POSITIVE_INFINITY
  // JSON Schema lengths count code points.
  while (Array.from(text).length < min) text += ` ${phrase(rng, 1)}`
  return Array.from(text).slice(0, max).join('')
}

function numberValue(schema: Schema, rng: Rng, integer: boolean): number {
  let low = typeof schema.minimum === 'number' ? schema.minimum : 0
  let high = typeof schema.maximum === 'number' ? schema.maximum : low + 100
  if (typeof schema.exclusiveMinimum === 'number') low = schema.exclusiveMinimum + (integer ? 1 : 1e-6)
  if (typeof schema.exclusiveMaximum === 'number') high = schema.exclusiveMaximum - (integer ? 1 : 1e-6)
  if (integer) {
    low = Math.ceil(low)
    high = Math.floor(high)
  }
  if (high < low) return low
  const step = typeof schema.multipleOf === 'number' && schema.multipleOf > 0 ? schema.multipleOf : undefined
  if (step) {
    const first = Math.ceil(low / step)
    const last = Math.floor(high / step)
    return (first + rng.int(Math.max(1, last - first + 1))) * step
  }
  if (integer) return low + rng.int(high - low + 1)
  return Math.round((low + rng.next() * (high - low)) * 100) / 100
}

function simplest(schema: Schema): unknown {
  switch (typeOf(schema)) {
    case 'object':
      return {}
    case 'array':
      return []
    case 'integer':
    case 'number':
      return 0
    case 'boolean':
      return false
    case 'null':
      return null
    default:
      return ''
  }
}

/** Local references only (`#/$defs/X`, `#/definitions/X`, `#`): tool schemas are self-contained. */
function resolveRef(root: Schema, ref: string): Schema {
  if (!ref.startsWith('#')) return {}
  let node: unknown = root
  for (const part of ref.slice(1).split('/').filter(Boolean)) {
    node = asSchema(node)[part.replaceAll('~1', '/').replaceAll('~0', '~')]
  }
  return asSchema(node)
}

function mergeAll(base: Schema, parts: Schema[]): Schema {
  const { allOf: _, ...rest } = base
  const merged: Schema = { ...rest }
  for (const part of parts) {
    const properties =
      merged.properties || part.properties
        ? { ...asSchema(merged.properties), ...asSchema(part.properties) }
        : undefined
    const required = [merged.required, part.required].flatMap((r) => (Array.isArray(r) ? r : []))
    Object.assign(merged, part)
    if (properties) merged.properties = properties
    if (required.length > 0) merged.required = required
  }
  return merged
}
