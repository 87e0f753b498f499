import { BaseError } from 'viem'
import { ZgContractError } from '../chain/errors.ts'
import { type Command, type CommandGroup, commandHelp, groupHelp, parseCommandArgs, UsageError } from './command.ts'
import { toJson } from './output.ts'

// Each command's code is loaded when it runs: `serve` does not carry the dev stack, the provider node or the account
// commands (and their memory) for as long as it serves.
const groups: Record<string, () => Promise<CommandGroup>> = {
  account: async () => (await import('./account.ts')).accountGroup,
  provider: async () => (await import('./provider.ts')).providerGroup,
  providers: async () => (await import('./providers.ts')).providersGroup,
  keys: async () => (await import('./keys.ts')).keysGroup,
  attest: async () => (await import('./attest.ts')).attestGroup,
  ft: async () => (await import('./ft.ts')).ftGroup,
}

const topLevel: Record<string, () => Promise<Command>> = {
  dev: async () => (await import('./dev.ts')).devCommand,
  serve: async () => (await import('./serve.ts')).serveCommand,
  usage: async () => (await import('./usage.ts')).usageCommand,
  doctor: async () => (await import('./doctor.ts')).doctorCommand,
}

/** `completion bash|zsh`: the shell completion script, built from the commands themselves. */
async function completion(shell: string | undefined): Promise<string> {
  const { completionScript, completionTree } = await import('./completion.ts')
  const load = async <T>(loaders: Record<string, () => Promise<T>>) =>
    Object.fromEntries(await Promise.all(Object.entries(loaders).map(async ([n, l]) => [n, await l()] as const)))
  return completionScript(shell, completionTree(await load(topLevel), await load(groups)))
}

async function summaries(loaders: Record<string, () => Promise<{ summary: string }>>): Promise<string[]> {
  const loaded = await Promise.all(Object.entries(loaders).map(async ([name, load]) => [name, await load()] as const))
  return loaded.map(([name, item]) => `  ${name.padEnd(10)}  ${item.summary}`)
}

async function help(): Promise<string> {
  const c = await summaries(topLevel)
  const g = await summaries(groups)
  return `Usage: zg-gateway <command> [options]\n\nOpenAI-compatible gateway and provider node for the 0G Compute Network.\n\nCommands:\n${c.join('\n')}\n${g.join('\n')}\n  ${'completion'.padEnd(10)}  Print a shell completion script: source <(zg-gateway completion bash)\n\nRun zg-gateway <command> --help for details.\n`
}

/** Runs the CLI; returns the exit code. Errors are printed as one clear line (or JSON with --json). */
export async function main(argv: string[]): Promise<number> {
  const [first, second, ...rest] = argv
  const json = argv.includes('--json')
  try {
    if (!first || first === '--help' || first === '-h' || first === 'help') {
      process.stdout.write(await help())
      return first ? 0 : 1
    }
    if (first === 'completion') {
      process.stdout.write(await completion(second))
      return 0
    }
    if (Object.hasOwn(topLevel, first)) {
      const command = await topLevel[first]!()
      const args = argv.slice(1)
      const { values, positionals } = parseCommandArgs(command, args)
      if (values.help) {
        process.stdout.write(commandHelp(first, command))
        return 0
      }
      return await command.run(values, positionals)
    }
    const group = Object.hasOwn(groups, first) ? await groups[first]!() : undefined
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
