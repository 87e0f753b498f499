/**
 * The scaling section of `npm run bench`: gateway instances on one Postgres against one on SQLite, same dev stack,
 * same provider node, same run. Every call is made with a key that has a budget and a rate limit, so each one
 * reserves, settles and counts in the store: what a team's traffic costs the shared store.
 */
import { startPostgresServer } from '../src/devnet/postgres-server.ts'
import type { LatencyResult, LoadConfig, LoadResult, Target, ThroughputResult } from './load.ts'

type Instance = { url: string; pid: number; stop(): Promise<void> }

export type ScalingDeps = {
  /** A gateway process on `store` (undefined: SQLite in its own data dir `dir`), with the admin API on `adminKey`. */
  startGateway(opts: { store?: string; adminKey: string; dir: string }): Promise<Instance>
  runLoad(cfg: LoadConfig, limitMs: number): Promise<LoadResult>
  /** Waits for the processes to go idle; then settles the provider node, whose cost grows with unsettled records. */
  quiet(): Promise<void>
  say(line: string): void
  /** The non-streamed chat body, and the connections of the throughput sections. */
  body: string
  connections: number
  throughput: { warmupSeconds: number; seconds: number }
  latency: { warmup: number; requests: number; block: number }
}

export type ScalingReport = {
  /** Sequential calls, one instance each: what the shared store adds to a call. */
  latency: { sqlite: LatencyResult; postgres: LatencyResult; postgresMinusSqliteP50Ms: number }
  throughput: {
    sqlite: ThroughputResult
    postgresOne: ThroughputResult
    /** Two instances, each under half the connections at once, from two load generators. */
    postgresTwo: ThroughputResult[]
    postgresTwoRps: number
    /** 2 instances ÷ 1 instance, both on Postgres. */
    twoOverOne: number
    /** 1 instance on Postgres ÷ 1 on SQLite. */
    postgresOverSqlite: number
  }
}

const ADMIN_KEY = 'sk-bench-scaling-admin'

/** A key with a budget and a rate limit that never bind, so each call goes through both in the store. */
async function createKey(instance: Instance): Promise<string> {
  const res = await fetch(`${instance.url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', budget: '1000000', rpm: 100_000_000 }),
  })
  if (res.status !== 201) throw new Error(`creating a bench key failed: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { key: string }).key
}

const target = (name: string, instance: Instance, key: string, body: string): Target => ({
  name,
  url: `${instance.url}/v1/chat/completions`,
  headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
  body,
})

export async function scalingSection(deps: ScalingDeps): Promise<ScalingReport> {
  const { say } = deps
  // Postgres as Debian installs it (every commit flushed to disk); SQLite as the gateway opens it (WAL, NORMAL).
  const pg = await startPostgresServer({ durable: true })
  const started: Instance[] = []
  try {
    say(`scaling: a PostgreSQL server on ${new URL(pg.url).host}; gateway instances on it and one on SQLite`)
    const start = async (opts: { store?: string; dir: string }) => {
      const g = await deps.startGateway({ ...opts, adminKey: ADMIN_KEY })
      started.push(g)
      return g
    }
    const sqlite = await start({ dir: 'scaling-sqlite' })
    const [pg1, pg2] = await Promise.all([
      start({ store: pg.url, dir: 'scaling-pg-1' }),
      start({ store: pg.url, dir: 'scaling-pg-2' }),
    ])
    const sqliteKey = await createKey(sqlite)
    // One key for both Postgres instances: their calls reserve against the same row.
    const pgKey = await createKey(pg1)
    const tSqlite = target('1 gateway, SQLite', sqlite, sqliteKey, deps.body)
    const tPg1 = target('1 gateway, Postgres', pg1, pgKey, deps.body)
    const tPg2 = target('2nd gateway, Postgres', pg2, pgKey, deps.body)

    await deps.quiet()
    const lat = await deps.runLoad(
      {
        mode: 'latency',
        targets: [tSqlite, tPg1],
        warmup: deps.latency.warmup,
        requests: deps.latency.requests,
        blocks: { size: deps.latency.block, warmup: 5, pauseMs: 50 },
        maxSeconds: 240,
      },
      300_000,
    )
    if (lat.mode !== 'latency') throw new Error('unexpected load result')
    const [latSqlite, latPg] = lat.results as [LatencyResult, LatencyResult]
    say(`  latency p50: SQLite ${latSqlite.latencyMs.p50} ms, Postgres ${latPg.latencyMs.p50} ms`)

    const round = async (t: Target, connections: number) => {
      const r = await deps.runLoad(
        { mode: 'throughput', target: t, connections, ...deps.throughput },
        (deps.throughput.warmupSeconds + deps.throughput.seconds + 30) * 1000,
      )
      if (r.mode !== 'throughput') throw new Error('unexpected load result')
      return r.result
    }
    await deps.quiet()
    const one = await round(tSqlite, deps.connections)
    await deps.quiet()
    const pgOne = await round(tPg1, deps.connections)
    await deps.quiet()
    const half = Math.ceil(deps.connections / 2)
    const pgTwo = await Promise.all([round(tPg1, half), round(tPg2, half)])
    const twoRps = pgTwo.reduce((sum, r) => sum + r.rps, 0)
    for (const r of [one, pgOne, ...pgTwo])
      say(`  ${r.name}: ${r.rps.toFixed(0)} req/s, p50 ${r.latencyMs.p50} ms, ${r.errors} errors`)
    say(`  2 gateways on Postgres: ${twoRps.toFixed(0)} req/s together`)
    return {
      latency: {
        sqlite: latSqlite,
        postgres: latPg,
        postgresMinusSqliteP50Ms: Number((latPg.latencyMs.p50 - latSqlite.latencyMs.p50).toFixed(3)),
      },
      throughput: {
        sqlite: one,
        postgresOne: pgOne,
        postgresTwo: pgTwo,
        postgresTwoRps: Number(twoRps.toFixed(1)),
        twoOverOne: Number((twoRps / pgOne.rps).toFixed(3)),
        postgresOverSqlite: Number((pgOne.rps / one.rps).toFixed(3)),
      },
    }
  } finally {
    for (const g of started) await g.stop().catch(() => undefined)
    await pg.stop()
  }
}
