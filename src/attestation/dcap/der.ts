/** One DER element: its tag, and where its header starts and its content starts and ends in the input. */
export type DerElement = { tag: number; start: number; contentStart: number; end: number }

export class DerError extends Error {
  override name = 'DerError'
}

/**
 * Reads the DER element at `offset` (single-byte tags and definite lengths only, which is all X.509 and CRLs use).
 * A reader this small is enough for the few CRL fields we check; dcap-qvl's own ASN.1 parsing is left alone.
 */
export function readDer(bytes: Uint8Array, offset: number): DerElement {
  const byteAt = (i: number) => {
    const b = bytes[i]
    if (b === undefined) throw new DerError(`DER truncated at byte ${i}`)
    return b
  }
  const tag = byteAt(offset)
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte DER tag at byte ${offset}`)
  let length = byteAt(offset + 1)
  let contentStart = offset + 2
  if (length & 0x80) {
    const count = length & 0x7f
    if (count === 0 || count > 4) throw new DerError(`unsupported DER length form at byte ${offset}`)
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + byteAt(offset + 2 + i)
    contentStart += count
  }
  const end = contentStart + length
  if (end > bytes.length) throw new DerError(`DER element at byte ${offset} runs past the end`)
  return { tag, start: offset, contentStart, end }
}

/** The elements directly inside a constructed element (a SEQUENCE's fields). */
export function derChildren(bytes: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = []
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readDer(bytes, at)
    out.push(child)
    at = child.end
  }
  return out
}

export const DER_SEQUENCE = 0x30
export const DER_INTEGER = 0x02
export const DER_BIT_STRING = 0x03
export const DER_UTC_TIME = 0x17
export const DER_GENERALIZED_TIME = 0x18

/** An X.509 Time (RFC 5280 §4.1.2.5): UTCTime YYMMDDHHMMSSZ (years 50-99 are 19xx) or GeneralizedTime. */
export function readDerTime(bytes: Uint8Array, el: DerElement): Date {
  const text = new TextDecoder('latin1').decode(bytes.subarray(el.contentStart, el.end))
  const m =
    el.tag === DER_UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : el.tag === DER_GENERALIZED_TIME
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null
  if (!m) throw new DerError(`not an X.509 time: tag 0x${el.tag.toString(16)} "${text}"`)
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number]
  const year = el.tag === DER_UTC_TIME ? (y >= 50 ? 1900 + y : 2000 + y) : y
  return new Date(Date.UTC(year, mo - 1, d, h, mi, s))
}
