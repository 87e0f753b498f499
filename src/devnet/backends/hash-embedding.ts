import { seededRng } from './rng.ts'

export const EMBEDDING_DIMENSIONS = 256

/**
 * A hashing embedding: each token adds a fixed dense pseudo-random vector (seeded by a hash of the token), and the sum
 * is normalized. It is not semantic, but it is honest about what it measures: texts sharing tokens have a higher
 * cosine similarity, and equal inputs get equal vectors. Values are float32, as OpenAI's are, so that the float and
 * base64 encodings carry exactly the same numbers.
 */
export function hashEmbedding(tokens: ReadonlyArray<string | number>, dimensions: number): number[] {
  const vector = new Float64Array(EMBEDDING_DIMENSIONS)
  for (const token of tokens) {
    const rng = seededRng('embedding', String(token))
    for (let k = 0; k < EMBEDDING_DIMENSIONS; k++) vector[k]! += rng.next() * 2 - 1
  }
  // Shorter vectors are a truncation of the full one, renormalized (as OpenAI's `dimensions` works).
  const kept = vector.subarray(0, dimensions)
  const norm = Math.hypot(...kept)
  return Array.from(kept, (x) => Math.fround(norm > 0 ? x / norm : 0))
}

/** `encoding_format: "base64"`: the float32 values as little-endian bytes, base64-encoded, exactly as OpenAI does. */
export function toBase64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4)
  vector.forEach((x, i) => {
    bytes.writeFloatLE(x, i * 4)
  })
  return bytes.toString('base64')
}
