import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { strToU8, Zip, ZipPassThrough, zipSync } from 'fflate'
import { afterAll, describe, expect, it } from 'vitest'
import { AdapterArchiveError, packAdapter, unpackAdapter } from './adapter-archive.ts'

const root = await mkdtemp(join(tmpdir(), 'zg-adapter-archive-'))
afterAll(() => rm(root, { recursive: true, force: true }))
let n = 0
const fresh = () => join(root, `d${++n}`)

/** A zip whose entries are exactly these names, duplicates included (zipSync's object cannot hold those). */
function rawZip(entries: [string, string][]): Uint8Array {
  const parts: Uint8Array[] = []
  const zip = new Zip((err, chunk) => {
    if (err) throw err
    parts.push(chunk)
  })
  for (const [name, content] of entries) {
    const file = new ZipPassThrough(name)
    zip.add(file)
    file.push(strToU8(content), true)
  }
  zip.end()
  return Buffer.concat(parts)
}

describe('adapter archive', () => {
  it('packs a directory (nested, deterministic) and unpacks it byte for byte', async () => {
    const src = fresh()
    await mkdir(join(src, 'sub', 'deeper'), { recursive: true })
    await writeFile(join(src, 'adapter_config.json'), '{"peft_type":"LORA"}')
    await writeFile(join(src, 'adapter_model.safetensors'), Buffer.alloc(100_000, 7))
    await writeFile(join(src, 'sub', 'deeper', 'empty'), '')
    const zip = await packAdapter(src)
    expect(Buffer.from(await packAdapter(src)).equals(zip)).toBe(true)
    const out = fresh()
    await unpackAdapter(zip, out)
    expect(await readFile(join(out, 'adapter_config.json'), 'utf8')).toBe('{"peft_type":"LORA"}')
    expect((await readFile(join(out, 'adapter_model.safetensors'))).equals(Buffer.alloc(100_000, 7))).toBe(true)
    expect(await readFile(join(out, 'sub', 'deeper', 'empty'), 'utf8')).toBe('')
  })

  it('refuses to pack a symlink or an empty directory', async () => {
    const src = fresh()
    await mkdir(src)
    await expect(packAdapter(src)).rejects.toThrow('is empty')
    await symlink('/etc/hostname', join(src, 'leak'))
    await expect(packAdapter(src)).rejects.toThrow('leak in the adapter directory is not a regular file')
  })

  it('refuses unsafe paths and duplicate names, leaving nothing behind', async () => {
    for (const name of ['../escape', '/etc/passwd', 'a/../../escape', 'a\\b', 'C:/x', 'a//b', './a', 'a/./b']) {
      const out = fresh()
      await expect(
        unpackAdapter(
          rawZip([
            ['ok', '1'],
            [name, 'x'],
          ]),
          out,
        ),
        name,
      ).rejects.toThrow('has an unsafe path')
      expect(existsSync(out)).toBe(false)
    }
    expect(existsSync(join(root, 'escape'))).toBe(false)
    await expect(
      unpackAdapter(
        rawZip([
          ['a', '1'],
          ['a', '2'],
        ]),
        fresh(),
      ),
    ).rejects.toBeInstanceOf(AdapterArchiveError)
  })

  it('counts inflated bytes against the limits, whatever the headers claim', async () => {
    const bomb = zipSync({ zeros: new Uint8Array(20 * 1024 * 1024) }, { level: 9 })
    expect(bomb.length).toBeLessThan(100_000)
    const out = fresh()
    await expect(unpackAdapter(bomb, out, { maxEntryBytes: 1024 * 1024 })).rejects.toThrow(
      'zeros is over 1048576 bytes',
    )
    expect(existsSync(out)).toBe(false)
    const two = zipSync({ a: new Uint8Array(600), b: new Uint8Array(600) })
    await expect(unpackAdapter(two, fresh(), { maxTotalBytes: 1000 })).rejects.toThrow('unpacks to over 1000 bytes')
    await expect(unpackAdapter(two, fresh(), { maxEntries: 1 })).rejects.toThrow('more than 1 entries')
    await unpackAdapter(two, fresh(), { maxEntries: 2, maxTotalBytes: 1200, maxEntryBytes: 600 })
  })

  it('refuses garbage, an empty archive and a non-empty target', async () => {
    await expect(unpackAdapter(new TextEncoder().encode('not a zip at all'), fresh())).rejects.toBeInstanceOf(
      AdapterArchiveError,
    )
    await expect(unpackAdapter(zipSync({}), fresh())).rejects.toThrow('holds no files')
    const out = fresh()
    await mkdir(out)
    await writeFile(join(out, 'x'), '')
    await expect(unpackAdapter(zipSync({ a: new Uint8Array(1) }), out)).rejects.toThrow('is not empty')
    expect(existsSync(join(out, 'x'))).toBe(true)
  })
})
