#!/usr/bin/env node
// In this repository the CLI runs the TypeScript sources directly (Node >= 22.18 strips types). Node does not
// strip types inside node_modules, so an installed package runs its compiled dist/ instead (built by prepack).
import { fileURLToPath } from 'node:url'

const installed = fileURLToPath(import.meta.url).includes('/node_modules/')

// Checked before anything else is loaded: an older Node fails on the sources with a stack trace, not a reason. The
// sources need type stripping (22.18); the compiled package needs what engines says (22).
const [major, minor] = process.versions.node.split('.').map(Number)
const needed = installed ? [22, 0] : [22, 18]
if (major < needed[0] || (major === needed[0] && minor < needed[1])) {
  console.error(
    `zg-gateway needs Node >= ${needed.join('.')}; this is Node ${process.versions.node}. ` +
      'Run it through npm (npm start, npx zg-gateway), which uses the Node 24 that npm ci installs, or upgrade Node.',
  )
  process.exit(1)
}

const { main } = await import(installed ? '../dist/cli/main.js' : '../src/cli/main.ts')

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err))
    process.exitCode = 1
  },
)
