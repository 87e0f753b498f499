/**
 * The web UI's build: src/ui/main.tsx bundled for the browser (Preact, minified, one ES module), the hand-written
 * stylesheet, and index.html naming both by content hash so the gateway can let browsers cache them for good.
 * Returns the files instead of writing them: `npm run build` writes them to dist/ui, and a gateway run from the
 * sources (this repository: npm start, the tests) builds them in memory on its first page (src/gateway/ui-routes.ts).
 */

import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { rolldown } from 'rolldown'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const source = join(root, 'src/ui')

const contentHash = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 10)

/** The built UI: file name → bytes (index.html and its hashed script and stylesheet). */
export async function buildUi(): Promise<Map<string, Uint8Array>> {
  const bundle = await rolldown({
    cwd: root,
    input: join(source, 'main.tsx'),
    platform: 'browser',
    tsconfig: join(source, 'tsconfig.json'),
    logLevel: 'warn',
  })
  const { output } = await bundle.generate({ format: 'esm', minify: true, entryFileNames: 'app-[hash].js' })
  await bundle.close()
  const files = new Map<string, Uint8Array>()
  const script = output.find((o) => o.type === 'chunk' && o.isEntry)
  if (script?.type !== 'chunk') throw new Error('the UI bundle has no entry chunk')
  for (const o of output) {
    if (o.type === 'chunk') files.set(o.fileName, Buffer.from(o.code))
    else files.set(o.fileName, typeof o.source === 'string' ? Buffer.from(o.source) : o.source)
  }
  const css = readFileSync(join(source, 'app.css'))
  const cssName = `app-${contentHash(css)}.css`
  files.set(cssName, css)
  const html = readFileSync(join(source, 'index.html'), 'utf8')
    .replace('{{css}}', `/ui/${cssName}`)
    .replace('{{js}}', `/ui/${script.fileName}`)
  files.set('index.html', Buffer.from(html))
  return files
}
