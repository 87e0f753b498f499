import { UsageError, type Values } from './command.ts'

/** The admin key of a command: --admin-key, else ZG_ADMIN_KEY. */
export const adminKeyOf = (values: Values): string | undefined =>
  (values['admin-key'] as string | undefined) ?? process.env.ZG_ADMIN_KEY

/** A call to a running gateway's admin API (the funding policy and the router's figures live in that process). */
export async function adminCall<T>(
  gateway: string,
  adminKey: string | undefined,
  method: string,
  path: string,
): Promise<T> {
  if (!adminKey) throw new UsageError('--gateway needs the admin key: --admin-key or ZG_ADMIN_KEY')
  const url = `${gateway.replace(/\/+$/, '')}/admin${path}`
  let res: Response
  try {
    res = await fetch(url, { method, headers: { authorization: `Bearer ${adminKey}` } })
  } catch (err) {
    throw new UsageError(`The gateway at ${gateway} did not answer: ${(err as Error).message}`)
  }
  if (res.status !== 200) {
    const text = await res.text()
    const message = (() => {
      try {
        return (JSON.parse(text) as { error: { message: string } }).error.message
      } catch {
        return text.slice(0, 200)
      }
    })()
    throw new UsageError(`${method} ${url} answered ${res.status}: ${message}`)
  }
  return (await res.json()) as T
}
