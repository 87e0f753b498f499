import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { load } from 'js-yaml'
import { describe, expect, it } from 'vitest'
import { serveCommand } from '../src/cli/serve.ts'

/**
 * compose.yaml, without a Docker engine: parsed as YAML and held to what the README promises of it. One gateway
 * (`serve --host 0.0.0.0`, the image's command) on a postgres:16 service it waits for until healthy, its store URL
 * naming that service, its state in a named /data volume, published on the host's loopback only by default, and
 * every secret taken from the environment, never written in the file.
 */

const ROOT = join(import.meta.dirname, '..')
const TEXT = readFileSync(join(ROOT, 'compose.yaml'), 'utf8')

type Service = {
  build?: unknown
  image?: string
  command?: string[]
  environment?: Record<string, string>
  ports?: string[]
  volumes?: string[]
  depends_on?: Record<string, { condition?: string }>
  healthcheck?: { test?: string[] }
  deploy?: unknown
}
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown> }

const COMPOSE = load(TEXT) as Compose
const gateway = COMPOSE.services.gateway!
const postgres = COMPOSE.services.postgres!

/** Compose's interpolation with an empty environment: `${V:-default}` gives the default, `${V:?…}` a stand-in. */
function interpolated(value: string): string {
  return value.replace(/\$\{(\w+)(?::?([-?])([^}]*))?\}/g, (_, _name, op, arg) =>
    op === '-' ? arg : op === '?' ? 'set' : '',
  )
}

/** `${NAME:?message}`: compose refuses to start without NAME. */
const required = (name: string) => new RegExp(`^\\$\\{${name}:\\?[^}]+\\}$`)

describe('compose.yaml', () => {
  it('holds one gateway built from the Dockerfile, running serve on every interface of its container', () => {
    expect(Object.keys(COMPOSE.services).sort()).toEqual(['gateway', 'postgres'])
    expect(gateway.build).toBe('.')
    expect(gateway.command).toEqual(['serve', '--host', '0.0.0.0'])
    expect(Object.keys(serveCommand.options)).toContain('host')
    expect(gateway.deploy).toBeUndefined()
  })

  it("points the gateway's store at the postgres service, and starts it once postgres is healthy", () => {
    const url = new URL(interpolated(gateway.environment!.ZG_STORE_URL!))
    expect(url.protocol).toBe('postgres:')
    expect(url.hostname).toBe('postgres')
    expect(url.username).toBe(postgres.environment!.POSTGRES_USER)
    expect(url.pathname).toBe(`/${postgres.environment!.POSTGRES_DB}`)
    expect(gateway.depends_on).toEqual({ postgres: { condition: 'service_healthy' } })
    expect(postgres.image).toBe('postgres:16')
    expect(postgres.healthcheck?.test?.join(' ')).toMatch(/pg_isready -U zg -d zg/)
  })

  it("keeps the gateway's state and the database in named volumes, /data as the image declares it", () => {
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^VOLUME \["\/data"\]$/m)
    expect(gateway.volumes).toEqual(['zg-data:/data'])
    expect(postgres.volumes).toEqual(['zg-postgres:/var/lib/postgresql/data'])
    expect(Object.keys(COMPOSE.volumes ?? {}).sort()).toEqual(['zg-data', 'zg-postgres'])
  })

  it("publishes the gateway's port on the host's loopback only, unless told otherwise", () => {
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^EXPOSE 8080$/m)
    expect(gateway.ports).toHaveLength(1)
    const [host, hostPort, containerPort] = interpolated(gateway.ports![0]!).split(':')
    expect([host, hostPort, containerPort]).toEqual(['127.0.0.1', '8080', '8080'])
    expect(postgres.ports).toBeUndefined()
  })

  it('takes every secret from the environment, refusing to start without the ones it needs', () => {
    const env = gateway.environment!
    expect(env.ZG_PRIVATE_KEY).toMatch(required('ZG_PRIVATE_KEY'))
    expect(env.ZG_ADMIN_KEY).toMatch(required('ZG_ADMIN_KEY'))
    expect(env.ZG_NETWORK).toMatch(required('ZG_NETWORK'))
    expect(env.ZG_API_KEYS).toMatch(/^\$\{ZG_API_KEYS:-\}$/)
    expect(postgres.environment!.POSTGRES_PASSWORD).toMatch(required('POSTGRES_PASSWORD'))
    // The store URL's password is the same variable, never a literal.
    expect(env.ZG_STORE_URL).toMatch(/^postgres:\/\/zg:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432\/zg$/)
    // Nothing that looks like a key anywhere in the file, comments included.
    expect(TEXT).not.toMatch(/0x[0-9a-fA-F]{64}/)
    expect(TEXT).not.toMatch(/sk-[A-Za-z0-9]/)
    for (const service of Object.values(COMPOSE.services)) {
      for (const [name, value] of Object.entries(service.environment ?? {})) {
        if (/KEY|PASSWORD|SECRET|TOKEN/.test(name)) expect(String(value), name).toMatch(/^\$\{\w+:[-?][^}]*\}$/)
      }
    }
  })
})
