import type { ComponentChildren } from 'preact'
import { useKeys } from '../session.ts'

/** Shown instead of an admin page while no admin key is set. */
export function AdminKeyNeeded({ children }: { children: ComponentChildren }) {
  const { adminKey } = useKeys()
  if (adminKey) return <>{children}</>
  return (
    <p class="notice">
      This page reads the admin API: enter the gateway's admin key under Keys (top right). The gateway takes it from{' '}
      <code>serve --admin-key</code> or <code>ZG_ADMIN_KEY</code>; the dev stack's is <code>sk-zg-dev-admin</code>.
    </p>
  )
}
