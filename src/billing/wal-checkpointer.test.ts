import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { BACKSTOP_PAGES, checkpointInBackground } from './wal-checkpointer.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A WAL database whose own commits never checkpoint (below the backstop), with `pages` worth of rows in its WAL. */
function writer(): { db: DatabaseSync; path: string; fill(rows: number): void } {
  const dir = mkdtempSync(join(tmpdir(), 'zg-wal-'))
  dirs.push(dir)
  const path = join(dir, 'db.sqlite')
  const db = new DatabaseSync(path)
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = ${BACKSTOP_PAGES}`)
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)')
  const insert = db.prepare('INSERT INTO t VALUES (?, ?)')
  return {
    db,
    path,
    fill(rows) {
      for (let i = 0; i < rows; i++) insert.run(`${Math.random()}`, 'x'.repeat(500))
    },
  }
}

describe('checkpointInBackground', () => {
  it('copies committed pages into the database file from its own thread', async () => {
    const w = writer()
    const errors: Error[] = []
    const before = statSync(w.path).size
    w.fill(400)
    // The writer's commits left everything in the WAL: the database file has not grown. (Checked before the
    // checkpointer starts: on a slow machine it would otherwise run during the fill.)
    expect(statSync(w.path).size).toBe(before)
    const stop = checkpointInBackground(w.path, { intervalMs: 50, onError: (err) => errors.push(err) })
    const deadline = Date.now() + 5_000
    while (statSync(w.path).size === before && Date.now() < deadline) await sleep(25)
    expect(statSync(w.path).size).toBeGreaterThan(before + 100 * 1024)
    // And what the writer reads is unchanged by it.
    expect(w.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 400 })
    stop()
    w.db.close()
    expect(errors).toEqual([])
  })

  it('tells a failing checkpoint once, not every interval, and the others go on', async () => {
    const w = writer()
    const bad = join(mkdtempSync(join(tmpdir(), 'zg-wal-')), 'broken.sqlite')
    dirs.push(dirname(bad))
    writeFileSync(bad, 'this is not a SQLite database, and no checkpoint can run on it'.repeat(100))
    const errors: Error[] = []
    const stopBad = checkpointInBackground(bad, { intervalMs: 20, onError: (err) => errors.push(err) })
    const stopGood = checkpointInBackground(w.path, { onError: (err) => errors.push(err) })
    const before = statSync(w.path).size
    w.fill(400)
    const deadline = Date.now() + 5_000
    while ((statSync(w.path).size === before || !errors.length) && Date.now() < deadline) await sleep(25)
    // Some more intervals: still told once.
    await sleep(200)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.message).toMatch(/WAL checkpoint of .*broken\.sqlite failed: .*not a database/)
    expect(statSync(w.path).size).toBeGreaterThan(before + 100 * 1024)
    stopBad()
    stopGood()
    w.db.close()
  })

  it('without it, the same commits leave the database file as it was (the test above is not vacuous)', async () => {
    const w = writer()
    const before = statSync(w.path).size
    w.fill(400)
    await sleep(200)
    expect(statSync(w.path).size).toBe(before)
    w.db.close()
  })
})
