import { Worker } from 'node:worker_threads'

/**
 * The checkpointer's thread: a connection of its own to each database it is given, copying that database's WAL back
 * into it every `intervalMs`. PASSIVE never waits for the writer, nor holds it up. Plain JavaScript evaluated as a
 * worker, so that the built package needs no entry file for it.
 */
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { DatabaseSync } = require('node:sqlite')
const dbs = new Map()
// The last failure told of each path: a failure is told once, not every interval, until a checkpoint succeeds again.
const failing = new Map()
const failed = (path, err) => {
  const error = String((err && err.message) || err)
  if (failing.get(path) === error) return
  failing.set(path, error)
  parentPort.postMessage({ path, error })
}
const timer = setInterval(() => {
  for (const [path, db] of dbs) {
    try {
      db.exec('PRAGMA wal_checkpoint(PASSIVE)')
      failing.delete(path)
    } catch (err) {
      failed(path, err)
    }
  }
}, workerData.intervalMs)
parentPort.on('message', ({ add, remove }) => {
  if (add && !dbs.has(add)) {
    try {
      const db = new DatabaseSync(add)
      db.exec('PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL')
      dbs.set(add, db)
    } catch (err) {
      failed(add, err)
    }
  }
  if (remove) {
    dbs.get(remove)?.close()
    dbs.delete(remove)
    failing.delete(remove)
    // The last one let go: the thread ends by itself (the process has just stopped counting on it).
    if (dbs.size === 0) {
      clearInterval(timer)
      parentPort.close()
    }
  }
})
`

/** The WAL size (pages of 4 KiB) past which a commit checkpoints by itself after all: the backstop, some 40 MB. */
export const BACKSTOP_PAGES = 10_000

const INTERVAL_MS = 500

let worker: Worker | undefined
/** Registrations by path: a database opened twice in one process is checkpointed once, until both let go. */
const registered = new Map<string, number>()
/** Where a failed checkpoint of a path is told. */
const onErrors = new Map<string, (err: Error) => void>()

/**
 * Moves a WAL database's checkpoints off the thread that writes it. SQLite's automatic checkpoint runs inside the
 * commit that takes the WAL past 1,000 pages: on that commit's thread, with an fsync of the WAL and one of the
 * database (synchronous = NORMAL), some 5-10 ms every few hundred records, taken by whichever request made that
 * commit. A worker checkpoints instead; the caller raises its connection's automatic checkpoint to
 * {@link BACKSTOP_PAGES}, which it reaches only if the worker stops keeping up. Durability is unchanged: a committed
 * record is in the WAL either way.
 *
 * One worker serves every database of the process (a thread costs some 19 MB of memory), started with the first and
 * stopped with the last. Returns the function that stops checkpointing `path` (before its connection closes: the last
 * connection to close checkpoints what is left). A failing checkpoint is told to `onError` once, and again only if it
 * fails otherwise or after it has succeeded in between; meanwhile the writer's own backstop bounds the WAL.
 */
export function checkpointInBackground(
  path: string,
  options: { intervalMs?: number; onError?: (err: Error) => void } = {},
): () => void {
  if (!worker) {
    const started = new Worker(SOURCE, { eval: true, workerData: { intervalMs: options.intervalMs ?? INTERVAL_MS } })
    started.on('message', (m: { path: string; error: string }) =>
      onErrors.get(m.path)?.(new Error(`WAL checkpoint of ${m.path} failed: ${m.error}`)),
    )
    started.on('error', (err) => {
      for (const onError of new Set(onErrors.values())) onError(err)
      if (worker === started) worker = undefined
    })
    // Never the reason a process stays up.
    started.unref()
    worker = started
  }
  registered.set(path, (registered.get(path) ?? 0) + 1)
  if (options.onError) onErrors.set(path, options.onError)
  if (registered.get(path) === 1) worker.postMessage({ add: path })
  let stopped = false
  return () => {
    if (stopped) return
    stopped = true
    const left = (registered.get(path) ?? 1) - 1
    if (left > 0) {
      registered.set(path, left)
      return
    }
    registered.delete(path)
    onErrors.delete(path)
    worker?.postMessage({ remove: path })
    // With the last path gone, the worker ends by itself; the next registration starts another.
    if (registered.size === 0) worker = undefined
  }
}
