/**
 * `npm run build`: what the published package runs. The library and the CLI are bundled with their dependencies
 * (rolldown, tree-shaken, ES modules for Node): a process then parses only the code it can reach instead of every
 * module of viem, zod and undici, which is most of a Node gateway's memory at rest (about 145 → 90 MB of RSS to
 * load the gateway; undici is cut down to what the sources call, scripts/undici-slim.cjs). Whitespace and comments
 * go (2 MB less source held in memory) while every name stays, so stack traces still read; the source maps map them
 * back. Type declarations come
 * from tsc. Packages that are found on disk at run time stay outside:
 * the native secp256k1 and keccak bindings, the anvil binary, the contract artifacts.
 */

import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'rolldown'
import { buildUi } from './build-ui.ts'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const started = performance.now()
rmSync(`${root}/dist`, { recursive: true, force: true })

await build({
  cwd: root,
  input: {
    index: 'src/index.ts',
    'cli/main': 'src/cli/main.ts',
    // A worker thread loads its script by path: QuoteVerifier looks for it here.
    'attestation/dcap/quote-worker': 'src/attestation/dcap/quote-worker.ts',
    // The dev trainer runs as its own process (`--trainer dev`): DEV_TRAINER_COMMAND finds it here.
    'fine-tuning/dev-trainer-main': 'src/fine-tuning/dev-trainer-main.ts',
  },
  platform: 'node',
  external: [
    /^node:/,
    /^secp256k1(\/|$)/,
    /^keccak(\/|$)/,
    /^node-gyp-build(\/|$)/,
    /^@foundry-rs\/anvil/,
    /^@0gfoundation\//,
    /^@openzeppelin\/contracts/,
  ],
  resolve: { alias: { undici: `${root}/scripts/undici-slim.cjs` } },
  output: {
    dir: 'dist',
    format: 'esm',
    sourcemap: true,
    minify: { compress: false, mangle: false, codegen: { removeWhitespace: true } },
    chunkFileNames: 'chunks/[name]-[hash].js',
  },
  logLevel: 'warn',
})

// The web UI the gateway serves at / (src/gateway/ui-routes.ts reads dist/ui in the published package).
mkdirSync(`${root}/dist/ui`, { recursive: true })
for (const [name, bytes] of await buildUi()) writeFileSync(`${root}/dist/ui/${name}`, bytes)

execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json'], {
  cwd: root,
  stdio: 'inherit',
})
console.log(`built dist/ in ${Math.round(performance.now() - started)} ms`)
