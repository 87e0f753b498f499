/** Runs the functions given one at a time, in order: wallet transactions that share a nonce, without an escrow. */
export function serialQueue(): <T>(fn: () => Promise<T>) => Promise<T> {
  let queue: Promise<unknown> = Promise.resolve()
  return (fn) => {
    const run = queue.then(fn, fn)
    queue = run.catch(() => undefined)
    return run
  }
}
