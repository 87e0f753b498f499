import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs'
import { lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Unzip, UnzipInflate, type Zippable, zipSync } from 'fflate'

/**
 * An adapter directory as one file: a zip, the plaintext of 0G's encrypted artifact (the SDK saves the decrypted
 * model as `lora_model_<task>.zip`). Packing is deterministic (sorted names, a fixed timestamp), so the same adapter
 * gives the same bytes and the same root hash.
 */

/** 1980-01-01, the zip format's epoch: no clock in the bytes. */
const ZIP_EPOCH = new Date(1980, 0, 1)

/** The adapter directory holds something other than regular files and directories (a symlink could leak files). */
export class AdapterArchiveError extends Error {
  override name = 'AdapterArchiveError'
}

/** Zips every regular file under `dir` (paths relative to it, `/`-separated); refuses symlinks and devices. */
export async function packAdapter(dir: string): Promise<Uint8Array> {
  const files: Zippable = {}
  const walk = async (rel: string) => {
    const entries = await readdir(join(dir, rel))
    for (const name of entries.sort()) {
      const path = rel === '' ? name : `${rel}/${name}`
      const stat = await lstat(join(dir, path))
      if (stat.isDirectory()) await walk(path)
      else if (stat.isFile()) files[path] = [new Uint8Array(await readFile(join(dir, path))), { mtime: ZIP_EPOCH }]
      else throw new AdapterArchiveError(`${path} in the adapter directory is not a regular file`)
    }
  }
  await walk('')
  if (Object.keys(files).length === 0) throw new AdapterArchiveError(`the adapter directory ${dir} is empty`)
  return zipSync(files, { level: 6, mtime: ZIP_EPOCH })
}

export type UnpackLimits = {
  /** Default 1,000 entries. */
  maxEntries?: number
  /** Default 2 GiB per file, counted as it inflates (the header's size is the sender's word). */
  maxEntryBytes?: number
  /** Default 4 GiB in all. */
  maxTotalBytes?: number
}

const DEFAULT_LIMITS: Required<UnpackLimits> = {
  maxEntries: 1000,
  maxEntryBytes: 2 * 1024 ** 3,
  maxTotalBytes: 4 * 1024 ** 3,
}

/** Fed to the inflater this much at a time, so one step inflates at most ~1,000× that (deflate's ratio limit). */
const PUSH_BYTES = 16 * 1024

/**
 * Unpacks an archive that came from a stranger into `dir` (created; it must not exist or be empty). Refuses absolute
 * paths, `..`, backslashes, duplicate names, compression other than store/deflate, and anything past the limits,
 * counting the bytes as they inflate. On any refusal `dir` is removed, so no partial adapter remains.
 */
export async function unpackAdapter(zip: Uint8Array, dir: string, limits: UnpackLimits = {}): Promise<void> {
  const { maxEntries, maxEntryBytes, maxTotalBytes } = { ...DEFAULT_LIMITS, ...limits }
  await mkdir(dir, { recursive: true })
  if ((await readdir(dir)).length > 0) throw new AdapterArchiveError(`${dir} is not empty`)
  let entries = 0
  let total = 0
  let open: { fd: number; name: string; bytes: number } | undefined
  try {
    const unzip = new Unzip((file) => {
      if (++entries > maxEntries) throw new AdapterArchiveError(`the archive has more than ${maxEntries} entries`)
      const segments = safeSegments(file.name)
      if (file.name.endsWith('/')) {
        mkdirSync(join(dir, ...segments), { recursive: true })
        return
      }
      if (file.compression !== 0 && file.compression !== 8) {
        throw new AdapterArchiveError(`${file.name} uses compression method ${file.compression}`)
      }
      if (segments.length > 1) mkdirSync(join(dir, ...segments.slice(0, -1)), { recursive: true })
      // 'wx': a second entry of the same name fails instead of overwriting the first.
      const fd = openSync(join(dir, ...segments), 'wx', 0o644)
      open = { fd, name: file.name, bytes: 0 }
      const current = open
      file.ondata = (err, chunk, final) => {
        if (err) throw new AdapterArchiveError(`${file.name} does not inflate: ${err.message}`)
        current.bytes += chunk.length
        total += chunk.length
        if (current.bytes > maxEntryBytes) throw new AdapterArchiveError(`${file.name} is over ${maxEntryBytes} bytes`)
        if (total > maxTotalBytes) throw new AdapterArchiveError(`the archive unpacks to over ${maxTotalBytes} bytes`)
        writeSync(current.fd, chunk)
        if (final) {
          closeSync(current.fd)
          open = undefined
        }
      }
      file.start()
    })
    unzip.register(UnzipInflate)
    for (let at = 0; at < zip.length; at += PUSH_BYTES) {
      unzip.push(zip.subarray(at, at + PUSH_BYTES), at + PUSH_BYTES >= zip.length)
    }
    if (open) throw new AdapterArchiveError(`the archive ends inside ${open.name}`)
    if (entries === 0) throw new AdapterArchiveError('the archive holds no files')
  } catch (e) {
    if (open) closeSync(open.fd)
    await rm(dir, { recursive: true, force: true })
    if (e instanceof AdapterArchiveError) throw e
    throw new AdapterArchiveError(`the archive cannot be unpacked: ${(e as Error).message}`, { cause: e })
  }
}

/** The path's segments, when it is a plain relative path inside the directory; throws otherwise. */
function safeSegments(name: string): string[] {
  const trimmed = name.endsWith('/') ? name.slice(0, -1) : name
  const segments = trimmed.split('/')
  const bad =
    trimmed === '' ||
    name.startsWith('/') ||
    /[\\\0]/.test(name) ||
    /^[A-Za-z]:/.test(name) ||
    segments.length > 16 ||
    segments.some((s) => s === '' || s === '.' || s === '..' || Buffer.byteLength(s) > 255)
  if (bad) throw new AdapterArchiveError(`the archive entry ${JSON.stringify(name.slice(0, 200))} has an unsafe path`)
  return segments
}
