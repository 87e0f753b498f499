import { parseArgs } from 'node:util'
import { type Address, getAddress, isAddress } from 'viem'

export type OptionSpec = { type: 'string' | 'boolean'; multiple?: boolean; short?: string; description: string }
export type Options = Record<string, OptionSpec>
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>

export type Command = {
  summary: string
  /** Positional arguments, for the help text. */
  args?: string
  options: Options
  run(values: Values, positionals: string[]): Promise<number>
}

export type CommandGroup = { summary: string; commands: Record<string, Command> }

/** Options every command takes. */
export const commonOptions: Options = {
  json: { type: 'boolean', description: 'print machine-readable JSON' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
}

export class UsageError extends Error {
  override name = 'UsageError'
}

export function parseCommandArgs(command: Command, argv: string[]) {
  const options = { ...commonOptions, ...command.options }
  try {
    return parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries(options).map(([k, o]) => [
          k,
          { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) },
        ]),
      ),
      allowPositionals: true,
      strict: true,
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export function commandHelp(path: string, command: Command): string {
  const options = { ...command.options, ...commonOptions }
  const width = Math.max(...Object.entries(options).map(([k, o]) => k.length + (o.type === 'string' ? 8 : 0)))
  const lines = Object.entries(options).map(([k, o]) => {
    const flag = `--${k}${o.type === 'string' ? ' <value>' : ''}`
    return `  ${flag.padEnd(width + 4)}  ${o.description}`
  })
  return `Usage: zg-gateway ${path}${command.args ? ` ${command.args}` : ''} [options]\n\n${command.summary}\n\nOptions:\n${lines.join('\n')}\n`
}

export function groupHelp(name: string, group: CommandGroup): string {
  const width = Math.max(...Object.keys(group.commands).map((c) => c.length))
  const lines = Object.entries(group.commands).map(([c, cmd]) => `  ${c.padEnd(width)}  ${cmd.summary}`)
  return `Usage: zg-gateway ${name} <command> [options]\n\n${group.summary}\n\nCommands:\n${lines.join('\n')}\n\nRun zg-gateway ${name} <command> --help for a command's options.\n`
}

/** Reads a required string option or throws a usage error naming it. */
export function requireString(values: Values, name: string): string {
  const v = values[name]
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`)
  return v
}

/** A required address option: missing and malformed are told apart. */
export function requireAddress(values: Values, name: string): Address {
  const text = requireString(values, name)
  if (!isAddress(text, { strict: false })) throw new UsageError(`--${name} is not an address: ${text}`)
  return getAddress(text)
}
