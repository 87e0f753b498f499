import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { OffPathQueue } from './off-path.ts'

describe('OffPathQueue', () => {
  it('runs queued work when the gateway goes idle, not before', async () => {
    const q = new OffPathQueue({ maxDelayMs: 10_000 })
    const ran: number[] = []
    q.add(() => ran.push(1))
    q.add(() => ran.push(2))
    await new Promise((r) => setImmediate(r))
    expect(ran).toEqual([])
    expect(q.size).toBe(2)
    q.idle()
    q.idle()
    // Still not synchronously: the request that made the gateway idle finishes its turn first.
    expect(ran).toEqual([])
    await new Promise((r) => setImmediate(r))
    expect(ran).toEqual([1, 2])
    expect(q.size).toBe(0)
    q.flush()
  })

  it('runs queued work after maxDelayMs when no request comes, once', async () => {
    const q = new OffPathQueue({ maxDelayMs: 5 })
    let runs = 0
    q.add(() => runs++)
    await sleep(30)
    expect(runs).toBe(1)
    q.idle()
    await sleep(10)
    expect(runs).toBe(1)
  })

  it('does nothing on idle when nothing waits, and flush runs the rest at once', async () => {
    const q = new OffPathQueue({ maxDelayMs: 10_000 })
    q.idle()
    const ran: string[] = []
    q.add(() => ran.push('a'))
    q.add(() => {
      ran.push('b')
      // Work queued while draining waits for the next idle moment.
      q.add(() => ran.push('c'))
    })
    q.flush()
    expect(ran).toEqual(['a', 'b'])
    q.flush()
    expect(ran).toEqual(['a', 'b', 'c'])
    expect(q.size).toBe(0)
  })
})
