import { type Abi, type AbiFunction, type AbiParameter, toEventSelector, toFunctionSelector } from 'viem'
import { describe, expect, it } from 'vitest'
import { fineTuningServingAbi, inferenceServingAbi, ledgerManagerAbi } from '../src/chain/abi/index.ts'
import { loadZgArtifacts } from '../src/devnet/artifacts.ts'

// Our ABIs are written by hand; the official SDK package carries the ABIs of the deployed contracts.
// Every function, event and error we declare must exist there with the same selector and the same output types.
/** Canonical types of parameters, tuples spelled out, so output shapes can be compared. */
function typesOf(params: readonly AbiParameter[]): string {
  return params
    .map((p) => ('components' in p && p.components ? `(${typesOf(p.components)})${p.type.slice(5)}` : p.type))
    .join(',')
}

function index(abi: Abi) {
  const map = new Map<string, { kind: string; outputs?: string; indexed?: string }>()
  for (const item of abi) {
    if (item.type === 'function') {
      map.set(`function:${toFunctionSelector(item)}`, {
        kind: item.name,
        outputs: typesOf((item as AbiFunction).outputs),
      })
    } else if (item.type === 'event') {
      map.set(`event:${toEventSelector(item)}`, {
        kind: item.name,
        indexed: item.inputs.map((i) => (i.indexed ? 1 : 0)).join(''),
      })
    } else if (item.type === 'error') {
      map.set(`error:${toFunctionSelector({ ...item, type: 'function', outputs: [], stateMutability: 'view' })}`, {
        kind: item.name,
      })
    }
  }
  return map
}

describe.each([
  ['LedgerManager', ledgerManagerAbi, () => loadZgArtifacts().ledger.abi],
  ['InferenceServing', inferenceServingAbi, () => loadZgArtifacts().inference.abi],
  ['FineTuningServing', fineTuningServingAbi, () => loadZgArtifacts().fineTuning.abi],
])('%s ABI matches the official SDK 0.9.0', (_name, ours, official) => {
  const theirs = index(official() as Abi)
  const mine = index(ours as Abi)

  it('declares only selectors and topics that exist in the deployed ABI, with the same outputs', () => {
    const missing: string[] = []
    for (const [key, item] of mine) {
      const other = theirs.get(key)
      if (!other) missing.push(`${key} (${item.kind})`)
      else expect({ key, ...item }).toEqual({ key, ...other })
    }
    expect(missing).toEqual([])
  })

  it('covers every error and event of the deployed contract, so reverts and logs always decode', () => {
    const uncovered = [...theirs.entries()]
      .filter(
        ([key, item]) =>
          !key.startsWith('function:') && item.kind !== 'Initialized' && item.kind !== 'OwnershipTransferred',
      )
      .filter(([key]) => !mine.has(key))
      .map(([key, item]) => `${key} (${item.kind})`)
    expect(uncovered).toEqual([])
  })
})

it('matches the selectors 0g-protocol.md §1.6 lists', () => {
  const sel = (abi: Abi, name: string) =>
    toFunctionSelector(abi.find((i) => i.type === 'function' && i.name === name) as AbiFunction)
  expect(sel(inferenceServingAbi, 'getService')).toBe('0x15a52302')
  expect(sel(inferenceServingAbi, 'getAllServices')).toBe('0xa09cfca9')
  expect(sel(inferenceServingAbi, 'getAccount')).toBe('0xfd590847')
  expect(sel(inferenceServingAbi, 'settleFeesWithTEE')).toBe('0x8be74119')
  expect(sel(ledgerManagerAbi, 'transferFund')).toBe('0x2ba43b82')
  expect(sel(ledgerManagerAbi, 'retrieveFund')).toBe('0x31404a19')
  expect(sel(ledgerManagerAbi, 'getLedgerProviders')).toBe('0xaef42173')
})
