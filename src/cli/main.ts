import { BaseError } from 'viem'
import { ZgContractError } from '../chain/errors.ts'
import { accountGroup } from './account.ts'
import { type CommandGroup, commandHelp, groupHelp, parseCommandArgs, UsageError } from './command.ts'
import { devCommand } from './dev.ts'
import { keysGroup } from './keys.ts'
import { toJson } from './output.ts'
import { providerGroup } from './provider.ts'
import { providersGroup } from './providers.ts'
import { serveCommand } from './serve.ts'
import { usageCommand } from './usage.ts'

const groups: Record<string, CommandGroup> = {
  account: accountGroup,
  provider: providerGroup,
  providers: providersGroup,
  keys: keysGroup,
}

const topLevel = { dev: devCommand, serve: serveCommand, usage: usageCommand }

function help(): string {
  const g = Object.entries(groups).map(([name, group]) => `  ${name.padEnd(10)}  ${group.summary}`)
  const c = Object.entries(topLevel).map(([name, cmd]) => `  ${name.padEnd(10)}  ${cmd.summary}`)
  return `Usage: zg-gateway <command> [options]\n\nOpenAI-compatible gateway and provider node for the 0G Compute Network.\n\nCommands:\n${c.join('\n')}\n${g.join('\n')}\n\nRun zg-gateway <command> --help for details.\n`
}

/** Runs the CLI; returns the exit code. Errors are printed as one clear line (or JSON with --json). */
export async function main(argv: string[]): Promise<number> {
  const [first, second, ...rest] = argv
  const json = argv.includes('--json')
  try {
    if (!first || first === '--help' || first === '-h' || first === 'help') {
      process.stdout.write(help())
      return first ? 0 : 1
    }
    if (first in topLevel) {
      const command = topLevel[first as keyof typeof topLevel]
      const args = argv.slice(1)
      const { values, positionals } = parseCommandArgs(command, args)
      if (values.help) {
        process.stdout.write(commandHelp(first, command))
        return 0
      }
      return await command.run(values, positionals)
    }
    const group = groups[first]
    if (!group) throw new UsageError(`Unknown command "${first}". Run zg-gateway --help.`)
    if (!second || second === '--help' || second === '-h') {
      process.stdout.write(groupHelp(first, group))
      return second ? 0 : 1
    }
    const command = group.commands[second]
    if (!command) throw new UsageError(`Unknown command "${first} ${second}". Run zg-gateway ${first} --help.`)
    const { values, positionals } = parseCommandArgs(command, rest)
    if (values.help) {
      process.stdout.write(commandHelp(`${first} ${second}`, command))
      return 0
    }
    return await command.run(values, positionals)
  } catch (err) {
    const e = err as Error
    // viem's long messages carry request details; its short message is the part a user needs.
    const message = e instanceof BaseError ? e.shortMessage : e.message
    const kind = e instanceof UsageError ? 'usage' : e instanceof ZgContractError ? 'contract' : 'error'
    if (json) {
      const body: Record<string, unknown> = { error: { kind, message } }
      if (e instanceof ZgContractError) Object.assign(body.error as object, { errorName: e.errorName, args: e.args })
      process.stderr.write(`${toJson(body)}\n`)
    } else {
      process.stderr.write(`error: ${message}\n`)
    }
    return e instanceof UsageError ? 2 : 1
  }
}
