import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Address } from 'viem'
import { afterAll, describe, expect, it } from 'vitest'
import { PostgresFineTuningRecords } from '../src/gateway/fine-tuning/postgres-records.ts'
import type { FileRecord, FineTuningRecords, JobRecord } from '../src/gateway/fine-tuning/records.ts'
import { SqliteFineTuningRecords } from '../src/gateway/fine-tuning/sqlite-records.ts'
import { connectPostgres, type Sql } from '../src/store/postgres/connect.ts'
import { migrate } from '../src/store/postgres/migrate.ts'
import { testDatabase } from './support/postgres.ts'

type Backend = { name: string; open(): Promise<FineTuningRecords>; close(): Promise<void>; shared: boolean }

function sqliteBackend(): Backend {
  const dirs: string[] = []
  const open: SqliteFineTuningRecords[] = []
  return {
    name: 'SQLite',
    shared: false,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'zg-ft-records-'))
      dirs.push(dir)
      const records = new SqliteFineTuningRecords(join(dir, 'fine-tuning.sqlite'), join(dir, 'files'))
      open.push(records)
      return records
    },
    async close() {
      for (const r of open) r.close()
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    },
  }
}

function postgresBackend(): Backend {
  let db: Awaited<ReturnType<typeof testDatabase>> | undefined
  let sql: Sql | undefined
  return {
    name: 'Postgres',
    shared: true,
    async open() {
      if (!db) {
        db = await testDatabase()
        sql = connectPostgres(db.url, { max: 10 })
        await migrate(sql)
      }
      await sql!`TRUNCATE ft_files, ft_file_contents, ft_jobs, ft_job_events, ft_tuned_models CASCADE`
      return new PostgresFineTuningRecords(sql!)
    },
    async close() {
      await sql?.end({ timeout: 5 })
      await db?.dispose()
    },
  }
}

const file = (id: string, apiKeyId = 'key_a'): FileRecord => ({
  id,
  apiKeyId,
  purpose: 'fine-tune',
  filename: `${id}.jsonl`,
  bytes: 3,
  createdAt: 1_790_000_000,
  examples: 10,
  tokens: 1234,
})

const job = (id: string, over: Partial<JobRecord> = {}): JobRecord => ({
  id,
  apiKeyId: 'key_a',
  model: 'dev/chat-deterministic',
  trainingFile: 'file-1',
  hyperparameters: { n_epochs: 3, batch_size: 4, learning_rate_multiplier: 1 },
  suffix: 'captain',
  seed: 42,
  metadata: { team: 'a' },
  status: 'validating_files',
  phase: 'created',
  createdAt: 1_790_000_000,
  finishedAt: null,
  provider: null,
  taskId: null,
  taskNonce: null,
  datasetHash: null,
  fee: null,
  reservation: null,
  trainedTokens: 3702,
  fineTunedModel: null,
  resultFile: null,
  error: null,
  ...over,
})

const backends = [sqliteBackend(), postgresBackend()]
afterAll(async () => {
  for (const b of backends) await b.close()
})

describe.each(backends)('the $name fine-tuning records', (backend) => {
  it('keep a file with its bytes, for its key alone, listed in either order and paged', async () => {
    const r = await backend.open()
    await r.addFile(file('file-1'), Buffer.from('abc'))
    await r.addFile(file('file-2'), Buffer.from('def'))
    await r.addFile(file('file-3', 'key_b'), Buffer.from('ghi'))
    expect(await r.file('file-1', 'key_a')).toEqual(file('file-1'))
    expect(await r.file('file-1', 'key_b')).toBeUndefined()
    expect(Buffer.from((await r.fileContent('file-2', 'key_a'))!).toString()).toBe('def')
    expect(await r.fileContent('file-2', 'key_b')).toBeUndefined()
    const desc = await r.files('key_a', { limit: 1, order: 'desc' })
    expect(desc).toEqual({ data: [file('file-2')], hasMore: true })
    const next = await r.files('key_a', { limit: 1, order: 'desc', after: 'file-2' })
    expect(next).toEqual({ data: [file('file-1')], hasMore: false })
    expect((await r.files('key_a', { limit: 10, order: 'asc' })).data.map((f) => f.id)).toEqual(['file-1', 'file-2'])
    expect(await r.files('key_a', { limit: 10, order: 'asc', purpose: 'other' })).toEqual({ data: [], hasMore: false })
    // A cursor that names nothing is an empty page, not the first one again.
    expect(await r.files('key_a', { limit: 10, order: 'asc', after: 'file-nope' })).toEqual({
      data: [],
      hasMore: false,
    })
    expect(await r.deleteFile('file-1', 'key_b')).toBe(false)
    expect(await r.deleteFile('file-1', 'key_a')).toBe(true)
    expect(await r.fileContent('file-1', 'key_a')).toBeUndefined()
  })

  it('keep a job field for field, bigints exact, and move it only from the phase it was read in', async () => {
    const r = await backend.open()
    await r.addJob(job('ftjob-1'))
    expect(await r.job('ftjob-1')).toEqual(job('ftjob-1'))
    expect(await r.job('ftjob-1', 'key_b')).toBeUndefined()
    const fee = 123_456_789_012_345_678_901_234_567_890n
    const provider = '0x00000000000000000000000000000000000000AA' as Address
    const moved = await r.updateJob('ftjob-1', { phase: 'uploading', status: 'queued', provider, fee }, 'created')
    expect(moved).toMatchObject({ phase: 'uploading', status: 'queued', provider, fee })
    // A step that read the job before a cancel cannot move it on afterwards.
    expect(await r.updateJob('ftjob-1', { phase: 'cancelled', status: 'cancelled' }, 'uploading')).toBeDefined()
    expect(await r.updateJob('ftjob-1', { phase: 'creating', status: 'queued' }, 'uploading')).toBeUndefined()
    expect((await r.job('ftjob-1'))!.phase).toBe('cancelled')
    expect(await r.activeJobs()).toEqual([])
  })

  it('list jobs and events newest first, paged, and the active jobs oldest first', async () => {
    const r = await backend.open()
    for (const id of ['ftjob-a', 'ftjob-b', 'ftjob-c']) await r.addJob(job(id))
    await r.updateJob('ftjob-b', { phase: 'done', status: 'succeeded' })
    expect((await r.activeJobs()).map((j) => j.id)).toEqual(['ftjob-a', 'ftjob-c'])
    const page = await r.jobs('key_a', { limit: 2 })
    expect(page.data.map((j) => j.id)).toEqual(['ftjob-c', 'ftjob-b'])
    expect(page.hasMore).toBe(true)
    expect((await r.jobs('key_a', { limit: 2, after: 'ftjob-b' })).data.map((j) => j.id)).toEqual(['ftjob-a'])
    expect(await r.jobs('key_a', { limit: 2, after: 'ftjob-nope' })).toEqual({ data: [], hasMore: false })
    expect(await r.events('ftjob-a', { limit: 2, after: 'ftevent-nope' })).toEqual({ data: [], hasMore: false })
    for (let i = 0; i < 3; i++) {
      await r.addEvent({
        id: `ftevent-${i}`,
        jobId: 'ftjob-a',
        createdAt: 1_790_000_000 + i,
        level: 'info',
        type: i === 1 ? 'metrics' : 'message',
        message: `event ${i}`,
        data: i === 1 ? { step: 1, total_steps: 3, train_loss: 0.5 } : null,
      })
    }
    const events = await r.events('ftjob-a', { limit: 2 })
    expect(events.data.map((e) => e.message)).toEqual(['event 2', 'event 1'])
    expect(events.data[1]!.data).toEqual({ step: 1, total_steps: 3, train_loss: 0.5 })
    expect((await r.events('ftjob-a', { limit: 2, after: 'ftevent-1' })).data.map((e) => e.id)).toEqual(['ftevent-0'])
  })

  it('keep tuned models per key', async () => {
    const r = await backend.open()
    const model = {
      id: 'ft:dev/chat-deterministic:captain:abc',
      apiKeyId: 'key_a',
      baseModel: 'dev/chat-deterministic',
      provider: '0x00000000000000000000000000000000000000AA' as Address,
      jobId: 'ftjob-1',
      createdAt: 1_790_000_000,
    }
    await r.addTunedModel(model)
    expect(await r.tunedModel(model.id)).toEqual(model)
    expect(await r.tunedModels('key_a')).toEqual([model])
    expect(await r.tunedModels('key_b')).toEqual([])
  })

  it('lease a job to one holder at a time, until the lease runs out', async () => {
    const r = await backend.open()
    await r.addJob(job('ftjob-l'))
    expect(await r.claim('ftjob-l', 'instance-1', 60_000)).toBe(true)
    expect(await r.claim('ftjob-l', 'instance-1', 60_000)).toBe(true)
    if (!backend.shared) return
    expect(await r.claim('ftjob-l', 'instance-2', 60_000)).toBe(false)
    // A holder that stops renewing loses the job to the next one.
    expect(await r.claim('ftjob-l', 'instance-1', 1)).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(await r.claim('ftjob-l', 'instance-2', 60_000)).toBe(true)
    expect(await r.claim('ftjob-l', 'instance-1', 60_000)).toBe(false)
  })
})
