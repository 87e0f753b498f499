import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { type Dockerfile, DockerfileParser, type ImageTemplate, type Instruction } from 'dockerfile-ast'
import { ValidationSeverity, validate } from 'dockerfile-utils'
import { describe, expect, it } from 'vitest'
import { serveCommand } from '../src/cli/serve.ts'

/**
 * The Dockerfile, without a Docker engine: linted by dockerfile-utils with every optional check raised to an error,
 * and its instructions (parsed by dockerfile-ast) held to what operators rely on: the BASE build argument in every
 * stage, production dependencies only, a non-root user, the data volume, the port, the health check and `serve` by
 * default. The image itself is built and run by .ci/container-smoke (buildah, in CI).
 */

const ROOT = join(import.meta.dirname, '..')
const TEXT = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const DOCKERFILE: Dockerfile = DockerfileParser.parse(TEXT)
const STRICT = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
}

/** Each stage's instructions, FROM first, in order. */
function stages(): ImageTemplate[] {
  return DOCKERFILE.getFROMs().map((from) => {
    const stage = DOCKERFILE.getContainingImage(from.getRange().start)
    if (!stage) throw new Error(`no stage at line ${from.getRange().start.line + 1}`)
    return stage
  })
}

const finalStage = () => stages().at(-1)!
const named = (stage: ImageTemplate, keyword: string): Instruction[] =>
  stage.getInstructions().filter((i) => i.getKeyword() === keyword)
const args = (instruction: Instruction) => instruction.getArguments().map((a) => a.getValue())
/** An exec-form (JSON) instruction's strings. */
const json = (instruction: Instruction) => {
  const strings = (instruction as { getJSONStrings?: () => { getJSONValue(): string }[] }).getJSONStrings?.() ?? []
  return strings.map((s) => s.getJSONValue())
}
/** The final stage's environment, as ENV sets it. */
function env(): Map<string, string | null> {
  return new Map(
    finalStage()
      .getENVs()
      .flatMap((e) => e.getProperties().map((p) => [p.getName(), p.getValue()])),
  )
}

describe('Dockerfile', () => {
  it('lints clean, every optional check an error', () => {
    expect(validate(TEXT, STRICT).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([])
  })

  it('the linter does catch a broken Dockerfile', () => {
    const broken = 'FROM node:24\nRUNN npm ci\nEXPOSE abc\nCOPY one\n'
    expect(validate(broken, STRICT).filter((d) => d.severity === 1).length).toBeGreaterThanOrEqual(3)
  })

  it('builds every stage from the BASE argument, node:24-bookworm-slim by default', () => {
    const base = DOCKERFILE.getInitialARGs().find((a) => a.getProperty()?.getName() === 'BASE')
    expect(base?.getProperty()?.getValue()).toBe('node:24-bookworm-slim')
    const froms = DOCKERFILE.getFROMs()
    expect(froms.length).toBeGreaterThanOrEqual(2)
    for (const from of froms) {
      expect(from.getVariables().map((v) => v.getName())).toEqual(['BASE'])
      expect(from.getImage()).toBe(`\${BASE}`)
    }
  })

  it('installs with the dev dependencies and builds in a stage the final image copies from', () => {
    const [build, ...rest] = stages()
    const name = build!.getFROMs()[0]!.getBuildStage()
    expect(name).toBeTruthy()
    const runs = named(build!, 'RUN').map((r) => r.getArgumentsContent() ?? '')
    expect(runs.some((r) => r.includes('npm ci'))).toBe(true)
    expect(runs.some((r) => r.includes('npm prune --omit=dev'))).toBe(true)
    // The final stage runs no npm install of its own: it takes the pruned tree from the build stage.
    const final = rest.at(-1)!
    expect(named(final, 'RUN').some((r) => /\bnpm\b/.test(r.getArgumentsContent() ?? ''))).toBe(false)
    const copies = final.getCOPYs()
    expect(copies.length).toBeGreaterThan(0)
    for (const copy of copies) expect(copy.getFromFlag()?.getValue()).toBe(name)
  })

  it('copies into the build only files that exist and that .dockerignore lets through', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
    for (const entry of ['node_modules', 'dist', '.zg', '.git', 'test-results']) expect(ignored).toContain(entry)
    const [build] = stages()
    for (const copy of build!.getCOPYs()) {
      const sources = args(copy).slice(0, -1)
      for (const source of sources) {
        expect(existsSync(join(ROOT, source)), source).toBe(true)
        expect(ignored, source).not.toContain(source.replace(/\/$/, ''))
      }
    }
  })

  it('runs production mode with glibc returning large freed buffers, as the chaos test runs the gateway', () => {
    const vars = env()
    expect(vars.get('NODE_ENV')).toBe('production')
    expect(vars.get('MALLOC_MMAP_THRESHOLD_')).toBe('65536')
    expect(readFileSync(join(ROOT, 'test/chaos.test.ts'), 'utf8')).toContain("MALLOC_MMAP_THRESHOLD_: '65536'")
  })

  it('runs as a non-root user, with its state in a volume', () => {
    const users = named(finalStage(), 'USER').map((u) => args(u)[0])
    expect(users.length).toBeGreaterThan(0)
    expect(['root', '0', undefined]).not.toContain(users.at(-1)?.split(':')[0])
    const volumes = named(finalStage(), 'VOLUME').flatMap(json)
    expect(volumes).toEqual(['/data'])
    expect(env().get('ZG_DATA_DIR')).toBe('/data')
    // The volume is made and handed to the user before VOLUME (a change after it would be discarded).
    const instructions = finalStage().getInstructions()
    const volumeAt = instructions.findIndex((i) => i.getKeyword() === 'VOLUME')
    const chown = instructions.findIndex(
      (i) => i.getKeyword() === 'RUN' && /chown\s+\S+\s+\/data\b/.test(i.getArgumentsContent() ?? ''),
    )
    expect(chown).toBeGreaterThanOrEqual(0)
    expect(chown).toBeLessThan(volumeAt)
  })

  it('exposes the port serve listens on', () => {
    const exposed = named(finalStage(), 'EXPOSE').flatMap(args)
    expect(exposed).toEqual(['8080'])
    expect(env().get('ZG_PORT')).toBe('8080')
  })

  it('runs the compiled package with the base image node, serve on all interfaces by default', () => {
    const entrypoint = finalStage().getENTRYPOINTs().flatMap(json)
    expect(entrypoint[0]).toBe('node')
    // bin/zg-gateway.js runs dist/ only from inside a node_modules directory (else the TypeScript sources).
    expect(entrypoint[1]).toMatch(/\/node_modules\/zg-gateway\/bin\/zg-gateway\.js$/)
    const copies = finalStage().getCOPYs().map(args)
    expect(copies.some((a) => entrypoint[1]!.startsWith(a.at(-1)!))).toBe(true)
    const cmd = finalStage().getCMDs().flatMap(json)
    expect(cmd).toEqual(['serve', '--host', '0.0.0.0'])
    for (const flag of cmd.filter((a) => a.startsWith('--'))) expect(serveCommand.options).toHaveProperty(flag.slice(2))
  })

  it('has a health check that passes on a healthy gateway and fails otherwise', async () => {
    const [check] = finalStage().getHEALTHCHECKs()
    expect(check?.getSubcommand()?.getValue()).toBe('CMD')
    // dockerfile-ast parses HEALTHCHECK's flags and subcommand; what follows CMD is the exec form, a JSON array.
    const content = check!.getArgumentsContent() ?? ''
    const test = JSON.parse(content.slice(content.indexOf('CMD') + 3)) as string[]
    expect(test.slice(0, 2)).toEqual(['node', '-e'])
    expect(test[2]).toContain('/healthz')
    const flags = Object.fromEntries(check!.getFlags().map((f) => [f.getName(), f.getValue()]))
    expect(Object.keys(flags).sort()).toEqual(['interval', 'retries', 'start-period', 'timeout'])

    let status = 200
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404
      res.end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    const run = (env: NodeJS.ProcessEnv) =>
      new Promise<number | null>((resolve) => {
        spawn(process.execPath, test.slice(1), { env: { PATH: process.env.PATH, ...env }, stdio: 'ignore' }).on(
          'exit',
          resolve,
        )
      })
    try {
      expect(await run({ ZG_PORT: String(port) })).toBe(0)
      status = 503
      expect(await run({ ZG_PORT: String(port) })).toBe(1)
      server.close()
      server.closeAllConnections()
      expect(await run({ ZG_PORT: String(port) })).toBe(1)
    } finally {
      server.close()
    }
  })
})
