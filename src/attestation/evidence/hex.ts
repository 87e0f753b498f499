/** Measurements travel as lowercase hex without 0x (the dstack/NVIDIA convention); inputs may carry 0x or capitals. */
export function normalizeHex(value: string): string {
  return (value.startsWith('0x') || value.startsWith('0X') ? value.slice(2) : value).toLowerCase()
}

/** Bytes of a hex string (with or without 0x); throws on odd length or non-hex characters. */
export function hexBytes(value: string, what: string): Buffer {
  const hex = normalizeHex(value)
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) throw new TypeError(`${what} is not hex`)
  return Buffer.from(hex, 'hex')
}
