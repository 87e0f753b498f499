import { createHash } from 'node:crypto'

/** A seeded pseudo-random source: every dev model output is a pure function of its inputs. */
export type Rng = {
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform integer in [0, n). */
  int(n: number): number
  pick<T>(items: readonly T[]): T
}

/** Seeds an sfc32 generator from the SHA-256 of the given parts (joined with NUL so parts cannot run together). */
export function seededRng(...parts: Array<string | number>): Rng {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest()
  let a = digest.readUInt32LE(0)
  let b = digest.readUInt32LE(4)
  let c = digest.readUInt32LE(8)
  let d = digest.readUInt32LE(12)
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  const int = (n: number): number => Math.floor(next() * n)
  return { next, int, pick: (items) => items[int(items.length)]! }
}

/** 32-bit FNV-1a over the UTF-8 bytes: cheap and stable, for hashed token ids and feature hashing. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
