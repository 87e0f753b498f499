import { render } from 'preact'
import { Settings } from './components/settings.tsx'
import { Account } from './pages/account.tsx'
import { Keys } from './pages/keys.tsx'
import { Playground } from './pages/playground.tsx'
import { Providers } from './pages/providers.tsx'
import { Receipt } from './pages/receipt.tsx'
import { Usage } from './pages/usage.tsx'
import { useRoute } from './router.ts'

const PAGES = [
  ['playground', 'Playground'],
  ['providers', 'Providers'],
  ['account', 'Account'],
  ['keys', 'Keys'],
  ['usage', 'Usage'],
] as const

function Page({ page, arg }: { page: string; arg?: string }) {
  switch (page) {
    case 'providers':
      return <Providers />
    case 'account':
      return <Account />
    case 'keys':
      return <Keys />
    case 'usage':
      return <Usage />
    case 'receipts':
      return arg ? <Receipt id={arg} /> : <Usage />
    default:
      return <Playground />
  }
}

/** The gateway's web UI: a hash router over its pages, the keys panel in the header. */
function App() {
  const route = useRoute()
  const current = route.page === 'receipts' ? 'usage' : route.page || 'playground'
  return (
    <>
      <header>
        <h1>zg-gateway</h1>
        <nav>
          {PAGES.map(([id, label]) => (
            <a key={id} href={`#/${id}`} aria-current={current === id ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <Settings />
      </header>
      <main>
        <Page page={route.page} arg={route.arg} />
      </main>
    </>
  )
}

const root = document.getElementById('app')
if (root) {
  root.textContent = ''
  render(<App />, root)
}
