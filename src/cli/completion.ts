import { type Command, commonOptions, UsageError } from './command.ts'

/** The CLI as completion sees it: top-level words, each with its subcommands or its flags. */
export type CompletionTree = Record<string, { subcommands?: Record<string, string[]>; flags?: string[] }>

const flagsOf = (command: Command) => Object.keys({ ...commonOptions, ...command.options }).map((f) => `--${f}`)

/** The tree of commands and flags, for `completion`. */
export function completionTree(
  topLevel: Record<string, Command>,
  groups: Record<string, { commands: Record<string, Command> }>,
): CompletionTree {
  const tree: CompletionTree = {}
  for (const [name, command] of Object.entries(topLevel)) tree[name] = { flags: flagsOf(command) }
  for (const [name, group] of Object.entries(groups)) {
    tree[name] = {
      subcommands: Object.fromEntries(Object.entries(group.commands).map(([sub, c]) => [sub, flagsOf(c)])),
    }
  }
  return tree
}

/** A bash completion script (also read by zsh through bashcompinit): `source <(zg-gateway completion bash)`. */
export function bashCompletion(tree: CompletionTree): string {
  const cases: string[] = []
  for (const [name, node] of Object.entries(tree)) {
    if (node.subcommands) {
      const subs = Object.keys(node.subcommands).join(' ')
      const subCases = Object.entries(node.subcommands)
        .map(([sub, flags]) => `        ${sub}) words_="${flags.join(' ')}" ;;`)
        .join('\n')
      cases.push(
        `    ${name})\n      if [ "$COMP_CWORD" -eq 2 ]; then words_="${subs}"; else\n      case "\${COMP_WORDS[2]}" in\n${subCases}\n      esac; fi ;;`,
      )
    } else cases.push(`    ${name}) words_="${node.flags!.join(' ')}" ;;`)
  }
  return `# zg-gateway completion (bash; zsh with: autoload -U bashcompinit && bashcompinit)
_zg_gateway() {
  local words_=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    words_="${Object.keys(tree).join(' ')} completion --help"
  else
    case "\${COMP_WORDS[1]}" in
${cases.join('\n')}
      completion) words_="bash zsh" ;;
    esac
  fi
  COMPREPLY=( $(compgen -W "$words_" -- "\${COMP_WORDS[COMP_CWORD]}") )
}
complete -o default -F _zg_gateway zg-gateway
`
}

export function completionScript(shell: string | undefined, tree: CompletionTree): string {
  if (shell === 'bash') return bashCompletion(tree)
  if (shell === 'zsh') return `autoload -U +X bashcompinit && bashcompinit\n${bashCompletion(tree)}`
  throw new UsageError('usage: zg-gateway completion bash|zsh  (then: source <(zg-gateway completion bash))')
}
