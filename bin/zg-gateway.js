#!/usr/bin/env node
// In this repository the CLI runs the TypeScript sources directly (Node >= 22.18 strips types). Node does not
// strip types inside node_modules, so an installed package runs its compiled dist/ instead (built by prepack).
import { fileURLToPath } from 'node:url'

const installed = fileURLToPath(import.meta.url).includes('/node_modules/')
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
