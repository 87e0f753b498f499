import { toZgError, ZgContractError } from './errors.ts'

/** Resolves a contract read, or undefined when it reverts with `missingError` (the contract's "not found"). */
export async function readOptional<T>(read: Promise<T>, missingError: string): Promise<T | undefined> {
  try {
    return await read
  } catch (err) {
    const e = toZgError(err)
    if (e instanceof ZgContractError && e.errorName === missingError) return undefined
    throw e
  }
}
