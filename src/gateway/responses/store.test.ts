import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BrokenChainError, ResponseStore, type StoredResponse } from './store.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'zg-responses-'))
  dirs.push(dir)
  return join(dir, 'responses.sqlite')
}

const turn = (id: string, previous: string | null, said: string, answered: string): StoredResponse => ({
  id,
  apiKeyId: 'key-a',
  createdAt: 1,
  previousResponseId: previous,
  input: [{ type: 'message', id: `msg_in_${id}`, role: 'user', content: [{ type: 'input_text', text: said }] }],
  response: {
    id,
    object: 'response',
    output: [{ type: 'message', id: `msg_out_${id}`, role: 'assistant', text: answered }],
  },
})

describe('ResponseStore', () => {
  it('shows a response to the key that created it only, from the moment it is saved, and after a restart', () => {
    const path = tempPath()
    const idle: Array<() => void> = []
    const store = new ResponseStore(path, { whenIdle: (commit) => idle.push(commit) })
    store.save(turn('resp_1', null, 'hi', 'hello'))
    // Not committed yet, readable already.
    expect(idle).toHaveLength(1)
    expect(store.get('resp_1', 'key-a')?.response.id).toBe('resp_1')
    expect(store.get('resp_1', 'key-b')).toBeUndefined()
    expect(store.get('resp_1', null)).toBeUndefined()
    idle[0]!()
    store.close()
    const reopened = new ResponseStore(path)
    expect(reopened.get('resp_1', 'key-a')).toEqual(turn('resp_1', null, 'hi', 'hello'))
    expect(reopened.get('resp_1', 'key-b')).toBeUndefined()
    reopened.close()
  })

  it('rebuilds a conversation along previous_response_id: each turn’s input, then its output', () => {
    const store = new ResponseStore(':memory:')
    store.save(turn('resp_1', null, 'one', 'uno'))
    store.save(turn('resp_2', 'resp_1', 'two', 'dos'))
    store.flush()
    store.save(turn('resp_3', 'resp_2', 'three', 'tres'))
    expect(store.conversation('resp_3', 'key-a')!.map((item) => item.id)).toEqual([
      'msg_in_resp_1',
      'msg_out_resp_1',
      'msg_in_resp_2',
      'msg_out_resp_2',
      'msg_in_resp_3',
      'msg_out_resp_3',
    ])
    expect(store.conversation('resp_3', 'key-b')).toBeUndefined()
    expect(store.conversation('resp_9', 'key-a')).toBeUndefined()
    store.close()
  })

  it('deletes for the creating key only; a chain through a deleted response is reported broken', () => {
    const store = new ResponseStore(':memory:')
    store.save(turn('resp_1', null, 'one', 'uno'))
    store.save(turn('resp_2', 'resp_1', 'two', 'dos'))
    store.flush()
    expect(store.delete('resp_1', 'key-b')).toBe(false)
    expect(store.delete('resp_1', 'key-a')).toBe(true)
    expect(store.delete('resp_1', 'key-a')).toBe(false)
    expect(store.get('resp_1', 'key-a')).toBeUndefined()
    expect(() => store.conversation('resp_2', 'key-a')).toThrow(BrokenChainError)
    // A response deleted before its save was committed stays deleted.
    store.save(turn('resp_3', null, 'x', 'y'))
    expect(store.delete('resp_3', 'key-a')).toBe(true)
    store.flush()
    expect(store.get('resp_3', 'key-a')).toBeUndefined()
    store.close()
  })
})
