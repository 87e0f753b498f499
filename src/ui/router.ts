import { useEffect, useState } from 'preact/hooks'

/** A hash route: `#/keys` → { page: 'keys' }, `#/receipts/req_1` → { page: 'receipts', arg: 'req_1' }. */
export type Route = { page: string; arg?: string }

function current(): Route {
  const [page = '', ...rest] = location.hash.replace(/^#\/?/, '').split('/')
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : undefined
  return arg === undefined ? { page } : { page, arg }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current)
  useEffect(() => {
    const onChange = () => setRoute(current())
    addEventListener('hashchange', onChange)
    return () => removeEventListener('hashchange', onChange)
  }, [])
  return route
}

export const receiptHref = (requestId: string) => `#/receipts/${encodeURIComponent(requestId)}`
