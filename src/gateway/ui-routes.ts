import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Hono } from 'hono'
import { notFound } from './http/openai-error.ts'

/** The built web UI: file name → bytes, index.html among them (scripts/build-ui.ts). */
type UiFiles = ReadonlyMap<string, Uint8Array>

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

// The page holds API and admin keys: it runs only its own script, talks only to this gateway, and cannot be framed.
// Images and audio come back as data: and blob: URLs made from the answers.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; " +
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/** The directory of this package's package.json: the repository, or the installed package. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
}

/**
 * From the sources (this repository: npm start, the tests) the UI is built now, in memory, so it is never older
 * than its sources; the published package serves what `npm run build` wrote to dist/ui. Undefined: not built.
 */
async function loadUi(): Promise<UiFiles | undefined> {
  const root = packageRoot()
  if (import.meta.url.endsWith('.ts')) {
    // A path the bundler leaves alone: the published bundle never builds (rolldown is a devDependency).
    const builder = pathToFileURL(join(root, 'scripts/build-ui.ts')).href
    const { buildUi } = (await import(builder)) as { buildUi(): Promise<UiFiles> }
    return buildUi()
  }
  const dir = join(root, 'dist/ui')
  if (!existsSync(join(dir, 'index.html'))) return undefined
  return new Map(readdirSync(dir).map((name) => [name, readFileSync(join(dir, name))]))
}

/**
 * The web UI at `/` (index.html) and `/ui/{file}` (its script and stylesheet, named by content hash and so cached
 * for good). Loaded on the first page asked, not at start-up: a gateway nobody browses spends nothing on it. The UI
 * calls the gateway's own API from the same origin.
 */
export function uiRoutes(): Hono {
  let loading: Promise<UiFiles | undefined> | undefined
  const files = async () => {
    loading ??= loadUi()
    try {
      return await loading
    } catch (err) {
      loading = undefined
      throw err
    }
  }
  const serve = (bytes: Uint8Array, name: string, cache: string) =>
    new Response(bytes, {
      headers: {
        'content-type': TYPES[extname(name)] ?? 'application/octet-stream',
        'cache-control': cache,
        ...SECURITY_HEADERS,
      },
    })
  const ui = new Hono()
  ui.get('/', async () => {
    const index = (await files())?.get('index.html')
    if (!index) throw notFound('The web UI is not built: run npm run build.', 'ui_not_built')
    return serve(index, 'index.html', 'no-cache')
  })
  ui.get('/ui/:name', async (c) => {
    const name = c.req.param('name')
    const bytes = name === 'index.html' ? undefined : (await files())?.get(name)
    if (!bytes) throw notFound(`Invalid URL (GET ${c.req.path}).`, 'unknown_url')
    return serve(bytes, name, 'public, max-age=31536000, immutable')
  })
  return ui
}
