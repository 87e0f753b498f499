import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Hono } from 'hono'
import { notFound } from './http/openai-error.ts'

/** The directory of this package's package.json: the repository, or the installed package (as ui-routes.ts). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return dir
}

/** Swagger UI's prebuilt files, shipped in the swagger-ui-dist package: nothing is fetched from a CDN. */
function swaggerUiDir(): string {
  return dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'))
}

/** The reference page's own files: Swagger UI's bundle and stylesheet, and the script that starts it. */
const ASSETS: Record<string, { type: string; from: 'swagger-ui' | 'inline' }> = {
  'swagger-ui-bundle.js': { type: 'text/javascript; charset=utf-8', from: 'swagger-ui' },
  'swagger-ui.css': { type: 'text/css; charset=utf-8', from: 'swagger-ui' },
  'docs.js': { type: 'text/javascript; charset=utf-8', from: 'inline' },
}

// A file of its own rather than an inline script, so that the page's CSP can forbid inline scripts. No validator
// badge: Swagger UI would otherwise send the document to validator.swagger.io.
const STARTER = `window.ui = SwaggerUIBundle({
  url: '/openapi.yaml',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
})
`

/**
 * Swagger UI builds its DOM with React (styles set through the CSSOM, which style-src does not govern), reads the
 * document and runs "Try it out" with fetch to this origin, and draws its icons as data: SVGs. Nothing else is
 * allowed: no inline script, no remote origin, no framing.
 */
const DOCS_SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/**
 * The page at /docs. Its asset URLs carry Swagger UI's version, so a browser may cache them for good; its icon is
 * empty, so the browser asks for no /favicon.ico.
 */
function docsPage(version: string): string {
  const asset = (name: string) => `/docs/${name}?v=${encodeURIComponent(version)}`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>zg-gateway API reference</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${asset('swagger-ui.css')}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${asset('swagger-ui-bundle.js')}"></script>
<script src="${asset('docs.js')}"></script>
</body>
</html>
`
}

/** Reads a file once, on first use; a failed read is retried on the next request rather than cached. */
function cachedRead(path: () => string): () => Promise<Uint8Array> {
  let loading: Promise<Uint8Array> | undefined
  return async () => {
    loading ??= readFile(path())
    try {
      return await loading
    } catch (err) {
      loading = undefined
      throw err
    }
  }
}

/**
 * `GET /openapi.yaml`: the gateway's OpenAPI description (openapi.yaml at the package root, shipped in the
 * package), and `GET /docs`: that document rendered by Swagger UI from the files in node_modules, under a CSP that
 * admits this origin only. Public, like the web UI: the document holds no secret, and the page asks for keys only
 * when the reader tries a call.
 */
export function openapiRoutes(): Hono {
  const spec = cachedRead(() => join(packageRoot(), 'openapi.yaml'))
  const reads = new Map(Object.keys(ASSETS).map((name) => [name, cachedRead(() => join(swaggerUiDir(), name))]))
  let version: string | undefined
  const swaggerVersion = async () => {
    version ??= (JSON.parse(await readFile(join(swaggerUiDir(), 'package.json'), 'utf8')) as { version: string })
      .version
    return version
  }

  const routes = new Hono()
  routes.get('/openapi.yaml', async () => {
    const bytes = await spec().catch(() => {
      throw notFound('openapi.yaml is missing from this installation.', 'openapi_not_found')
    })
    return new Response(bytes, {
      headers: { 'content-type': 'application/yaml; charset=utf-8', 'cache-control': 'no-cache' },
    })
  })
  routes.get('/docs', async () => {
    return new Response(docsPage(await swaggerVersion()), {
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', ...DOCS_SECURITY_HEADERS },
    })
  })
  routes.get('/docs/:file', async (c) => {
    const name = c.req.param('file')
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined
    if (!asset) throw notFound(`Invalid URL (GET ${c.req.path}).`, 'unknown_url')
    let bytes: Uint8Array
    if (asset.from === 'inline') bytes = Buffer.from(STARTER)
    else bytes = await reads.get(name)!()
    return new Response(bytes, {
      headers: {
        'content-type': asset.type,
        // The page asks for them with Swagger UI's version in the query: a new version is a new URL.
        'cache-control': c.req.query('v') ? 'public, max-age=31536000, immutable' : 'no-cache',
        ...DOCS_SECURITY_HEADERS,
      },
    })
  })
  return routes
}
