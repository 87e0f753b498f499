import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { main } from './main.ts'

async function script(shell: string): Promise<string> {
  let out = ''
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string) => {
    out += chunk
    return true
  }) as typeof process.stdout.write
  try {
    expect(await main(['completion', shell])).toBe(0)
  } finally {
    process.stdout.write = write
  }
  return out
}

describe('zg-gateway completion', () => {
  it('prints a bash script that parses and completes commands, subcommands and their flags', async () => {
    const bash = await script('bash')
    execFileSync('bash', ['-n'], { input: bash })
    // What bash would offer after "zg-gateway keys c" and after "zg-gateway serve --adm".
    const complete = (line: string) =>
      execFileSync('bash', [
        '-c',
        `${bash}\nCOMP_WORDS=(${line}); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); _zg_gateway; echo "\${COMPREPLY[*]}"`,
      ])
        .toString()
        .trim()
    expect(complete('zg-gateway keys c')).toBe('create')
    expect(complete('zg-gateway serve --adm')).toBe('--admin-key')
    expect(complete('zg-gateway do')).toBe('doctor')
    expect(await script('zsh')).toContain('bashcompinit')
  })
})
