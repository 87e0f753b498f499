/** Longest part-header block looked at; busboy refuses longer ones anyway, so nothing here passes one through. */
const MAX_HEADER_BLOCK = 16 * 1024

const CRLF = Buffer.from('\r\n')
const HEADER_END = Buffer.from('\r\n\r\n')

/** The `name` of a part from its header block (`Content-Disposition: form-data; name="model"`), if it has one. */
function partName(headers: string): string | undefined {
  for (const line of headers.split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon < 0 || line.slice(0, colon).trim().toLowerCase() !== 'content-disposition') continue
    const m = /;\s*name\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(line.slice(colon + 1))
    if (m) return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]
  }
  return undefined
}

/**
 * Rewrites one text field of a multipart/form-data body as it streams: the value of every part named `name` is
 * replaced by `value`, every other byte passes unchanged. Parts are found by their delimiter (CRLF, `--`, the
 * boundary), which by the format's rule never occurs inside a part's content, so text in a file that looks like a
 * field is never touched. Used to send a model alias's target in the form the provider reads.
 */
export async function* rewriteMultipartField(
  source: AsyncIterable<Uint8Array>,
  boundary: string,
  name: string,
  value: string,
): AsyncGenerator<Buffer> {
  const delimiter = Buffer.from(`\r\n--${boundary}`)
  const replacement = Buffer.from(value, 'utf8')
  // The body opens with the first delimiter minus its CRLF: a virtual CRLF in front makes every delimiter alike.
  let buffer: Buffer = CRLF
  let virtual = CRLF.length
  let state: 'content' | 'headers' | 'skip' = 'content'
  const out = (bytes: Buffer): Buffer | undefined => {
    // Never emit the virtual CRLF.
    if (virtual > 0) {
      const drop = Math.min(virtual, bytes.length)
      virtual -= drop
      bytes = bytes.subarray(drop)
    }
    return bytes.length ? bytes : undefined
  }
  const step = (): { emit?: Buffer; more: boolean } => {
    if (state === 'content' || state === 'skip') {
      const at = buffer.indexOf(delimiter)
      if (at < 0) {
        // Keep what could be the start of a delimiter split across chunks.
        const keep = Math.min(buffer.length, delimiter.length - 1)
        const done = buffer.subarray(0, buffer.length - keep)
        buffer = buffer.subarray(buffer.length - keep)
        return { emit: state === 'skip' ? undefined : done, more: false }
      }
      const before = buffer.subarray(0, at)
      const emitted = Buffer.concat([state === 'skip' ? replacement : before, delimiter])
      buffer = buffer.subarray(at + delimiter.length)
      state = 'headers'
      return { emit: emitted, more: true }
    }
    // After a delimiter: `--` closes the form, else a header block up to the blank line that ends it.
    if (buffer.length < 2) return { more: false }
    if (buffer[0] === 0x2d && buffer[1] === 0x2d) {
      state = 'content'
      return { more: true }
    }
    const end = buffer.indexOf(HEADER_END)
    if (end < 0) {
      if (buffer.length <= MAX_HEADER_BLOCK) return { more: false }
      // A header block past any sane size: not a part this looks into.
      state = 'content'
      return { more: true }
    }
    const block = buffer.subarray(0, end + HEADER_END.length)
    buffer = buffer.subarray(block.length)
    state = partName(block.toString('latin1')) === name ? 'skip' : 'content'
    return { emit: block, more: true }
  }
  const drain = function* (): Generator<Buffer> {
    for (;;) {
      const { emit, more } = step()
      const bytes = emit && out(emit)
      if (bytes) yield bytes
      if (!more) return
    }
  }
  for await (const chunk of source) {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : Buffer.from(chunk)
    yield* drain()
  }
  // What is left holds no delimiter: it goes out as it is (a form cut short is the provider's to refuse).
  const bytes = out(buffer)
  if (bytes) yield bytes
}
