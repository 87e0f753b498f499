#!/usr/bin/env node
// The CLI runs the TypeScript sources directly: Node >= 22.18 strips types natively.
import { main } from '../src/cli/main.ts'

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err) => {
    console.error(err instanceof Error ? err.message : String(err))
    process.exitCode = 1
  },
)
