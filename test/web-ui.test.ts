import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { parseEther } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEV_PROVIDERS } from '../src/devnet/dev-stack.ts'
import { startTestStack } from './support/dev-stack.ts'
import { toneWav } from './support/wav.ts'

/**
 * The web UI at `/`, in a real browser (Debian's Chromium, driven by playwright-core) on the dev stack: the
 * playground's four kinds of call, the admin pages, and a key created in the UI whose spend moves when the
 * playground uses it. Screenshots go to test-results/ui/.
 */
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path))
const SHOTS = join(import.meta.dirname, '..', 'test-results', 'ui')
const ADMIN_KEY = 'sk-zg-dev-admin'

let stack: Awaited<ReturnType<typeof startTestStack>>
let browser: Browser
let page: Page
/** Every URL the page asked for: the UI must fetch nothing from anywhere but its gateway. */
const requested: string[] = []

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })

/** The text of a locator once it is non-empty and passes `ok` (playwright-core has no expect of its own). */
async function textWhen(testId: string, ok: (text: string) => boolean = (t) => t.length > 0, timeout = 20_000) {
  const locator = page.getByTestId(testId).last()
  const until = Date.now() + timeout
  for (;;) {
    const text = ((await locator.count()) ? await locator.textContent() : null)?.trim() ?? ''
    if (text && ok(text)) return text
    if (Date.now() > until) throw new Error(`${testId}: still "${text}" after ${timeout} ms`)
    await page.waitForTimeout(50)
  }
}

async function openTab(name: string) {
  await page.getByRole('tab', { name }).click()
}

/** Sends a chat message from the playground and waits for the whole answer; returns the texts seen meanwhile. */
async function chat(message: string, pin?: string): Promise<string[]> {
  await page.goto(`${stack.gateway.url}/#/playground`)
  await openTab('Chat')
  const panel = page.getByRole('tabpanel').filter({ has: page.getByTestId('chat-messages') })
  if (pin) await panel.getByLabel('Provider').selectOption(pin)
  await panel.getByLabel('Message').fill(message)
  await panel.getByRole('button', { name: 'Send' }).click()
  const seen: string[] = []
  const until = Date.now() + 20_000
  while ((await page.getByTestId('chat-status').textContent()) !== 'done') {
    if (Date.now() > until) throw new Error('the chat answer did not finish')
    const text = (await page.getByTestId('assistant-message').last().textContent()) ?? ''
    if (text && text !== '…' && seen.at(-1) !== text) seen.push(text)
    await page.waitForTimeout(20)
  }
  return seen
}

beforeAll(async () => {
  if (!CHROMIUM) {
    throw new Error(
      "Chromium is not installed: the web UI test drives Debian's (apt-get install -y chromium, as .ci/run does).",
    )
  }
  mkdirSync(SHOTS, { recursive: true })
  // A token every 15 ms: the answer takes a second or so to stream, long enough to watch it grow.
  stack = await startTestStack({ tokenDelayMs: 15 })
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'],
  })
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  page.on('request', (req) => requested.push(req.url()))
}, 120_000)

afterAll(async () => {
  await browser?.close()
  await stack?.dispose()
})

describe('the web UI', { timeout: 60_000 }, () => {
  it('is served at / as a built app, with a strict content policy and cacheable assets', async () => {
    const res = await fetch(`${stack.gateway.url}/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/html')
    expect(res.headers.get('content-security-policy')).toContain("connect-src 'self'")
    const html = await res.text()
    const script = /src="(\/ui\/app-[^"]+\.js)"/.exec(html)?.[1]
    expect(script).toBeDefined()
    const asset = await fetch(`${stack.gateway.url}${script}`)
    expect(asset.status).toBe(200)
    expect(asset.headers.get('cache-control')).toContain('immutable')
    expect((await fetch(`${stack.gateway.url}/ui/missing.js`)).status).toBe(404)
  })

  it('keeps the keys entered in its settings in sessionStorage, never in the URL', async () => {
    await page.goto(`${stack.gateway.url}/`)
    await page.getByLabel('API key').fill(stack.devKey)
    await page.getByLabel('Admin key').fill(ADMIN_KEY)
    await page.getByRole('button', { name: 'Save keys' }).click()
    await page.getByText('API key set, admin key set').waitFor()
    expect(await page.evaluate('sessionStorage.getItem("zg-gateway.api-key")')).toBe(stack.devKey)
    expect(page.url()).not.toContain(stack.devKey)
  })

  it('streams a chat answer from a pinned provider, showing its provider, fee, verification and receipt', async () => {
    const tee = stack.nodes.find((n) => n.spec.name === 'chat-tee')!.address
    const seen = await chat('Tell me about the 0G network', tee)
    // The answer grew on the page as its chunks arrived.
    expect(seen.length).toBeGreaterThan(2)
    const answer = await textWhen('assistant-message')
    expect(answer.length).toBeGreaterThan(seen[0]!.length)
    expect(await page.getByTestId('meta-provider').getAttribute('title')).toBe(tee)
    expect(await textWhen('meta-fee', (t) => t !== '—')).toMatch(/^0\.\d+ 0G$/)
    expect(await textWhen('meta-verification')).toBe('L1')
    await shot('playground-chat')

    await page.getByTestId('answer-meta').getByRole('link').click()
    await page.getByTestId('signed-receipt').waitFor({ timeout: 20_000 })
    expect(await textWhen('receipt-verification')).toMatch(/^verified at L1/)
    await shot('receipt')
  })

  it('generates an image and shows it', async () => {
    await page.goto(`${stack.gateway.url}/#/playground`)
    await openTab('Image')
    const panel = page.getByRole('tabpanel').filter({ hasText: 'Size' })
    await panel.getByLabel('Prompt').fill('a lighthouse at dusk')
    await panel.getByRole('button', { name: 'Generate' }).click()
    const image = page.getByTestId('image-result')
    await image.waitFor({ timeout: 20_000 })
    expect(await image.getAttribute('src')).toMatch(/^data:image\/png;base64,/)
    // The browser decoded it: an image with a width. (Read by a function, not a string the page would have to eval:
    // the UI's CSP forbids eval, and a string predicate that must poll is evaluated that way.)
    await expect
      .poll(() => image.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth), { timeout: 10_000 })
      .toBeGreaterThan(0)
    expect(await panel.getByTestId('meta-fee').textContent()).toBe('0.01 0G')
    await shot('playground-image')
  })

  it('speaks a text and plays the returned WAV', async () => {
    await openTab('Speech')
    const panel = page.getByRole('tabpanel').filter({ hasText: 'Voice' })
    await panel.getByLabel('Text').fill('Hello from the gateway')
    await panel.getByRole('button', { name: 'Speak' }).click()
    const audio = page.getByTestId('speech-audio')
    await audio.waitFor({ timeout: 20_000 })
    expect(await audio.getAttribute('src')).toMatch(/^blob:/)
    // The browser decoded it: a WAV with a duration.
    await expect
      .poll(() => audio.evaluate((el) => (el as unknown as { duration: number }).duration), { timeout: 10_000 })
      .toBeGreaterThan(0)
    expect(await panel.getByTestId('meta-fee').textContent()).toMatch(/ 0G$/)
    await shot('playground-speech')
  })

  it('transcribes an uploaded WAV', async () => {
    await openTab('Transcription')
    const panel = page.getByRole('tabpanel').filter({ hasText: 'Audio file' })
    const wav = toneWav([{ hz: 440, seconds: 1 }])
    await panel.getByLabel('Audio file').setInputFiles({ name: 'tone.wav', mimeType: 'audio/wav', buffer: wav })
    await panel.getByRole('button', { name: 'Transcribe' }).click()
    expect(await textWhen('transcript')).toContain('(440 Hz)')
    expect(await panel.getByTestId('meta-provider').textContent()).toMatch(/^0x/)
    await shot('playground-transcription')
  })

  it('creates a key with a budget, and its spend moves when the playground uses it', async () => {
    await page.goto(`${stack.gateway.url}/#/keys`)
    const form = page.getByRole('form', { name: 'Create a key' })
    await form.getByLabel('Name').fill('ui-team')
    await form.getByLabel('Budget (0G)').fill('1')
    await form.getByLabel('Budget period').selectOption('daily')
    await form.getByRole('button', { name: 'Create key' }).click()
    const secret = await textWhen('secret-value')
    expect(secret).toMatch(/^sk-/)
    const row = page.locator('tr[data-key-name="ui-team"]')
    await row.waitFor()
    expect(await row.getByTestId('key-spent').textContent()).toBe('0 0G')
    expect(await row.textContent()).toContain('1 0G')
    await page.getByRole('button', { name: "Use as the playground's API key" }).click()
    expect(await page.evaluate('sessionStorage.getItem("zg-gateway.api-key")')).toBe(secret)
    await shot('keys-created')

    await chat('Spend a little of my budget')
    await page.getByRole('link', { name: 'Keys' }).click()
    await row.waitFor()
    const spent = await textWhen('key-spent', (t) => t !== '0 0G')
    const listed = (await (
      await fetch(`${stack.gateway.url}/admin/keys`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
    ).json()) as { data: Array<{ name: string; spent: string }> }
    const key = listed.data.find((k) => k.name === 'ui-team')!
    expect(BigInt(key.spent)).toBeGreaterThan(0n)
    expect(parseEther(spent.replace(/ 0G$/, ''))).toBe(BigInt(key.spent))
    await shot('keys-spent')
  })

  it('shows providers with their level and circuit, and how to attest one', async () => {
    await page.goto(`${stack.gateway.url}/#/providers`)
    const rows = page.getByTestId('providers-table').locator('tbody tr')
    await rows.first().waitFor()
    expect(await rows.count()).toBe(DEV_PROVIDERS.length)
    expect(await page.getByTestId('providers-table').textContent()).toContain('closed')
    await rows.first().getByRole('button', { name: 'Attestation' }).click()
    expect(await textWhen('attestation')).toContain('npx zg-gateway providers verify 0x')
    await shot('providers')
  })

  it('shows the funding of each sub-account, and the CLI commands for chain actions', async () => {
    await page.goto(`${stack.gateway.url}/#/account`)
    const rows = page.getByTestId('funding-table').locator('tbody tr')
    await rows.first().waitFor()
    expect(await rows.count()).toBeGreaterThan(0)
    expect(await textWhen('chain-actions')).toContain('npx zg-gateway account transfer --provider 0x')
    await shot('account')
  })

  it('charts spend per day and key, and shows the reconciliation', async () => {
    await page.goto(`${stack.gateway.url}/#/usage`)
    const totals = await textWhen('usage-totals')
    expect(totals).toMatch(/^\d+ calls/)
    expect(await page.getByTestId('usage-chart').locator('rect').count()).toBeGreaterThan(0)
    expect(await page.getByTestId('usage-chart').textContent()).toContain('ui-team')
    await page.getByTestId('reconciliation-table').locator('tbody tr').first().waitFor({ timeout: 20_000 })
    await shot('usage')
  })

  it('fits a narrow screen', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } })
    try {
      phone.on('request', (req) => requested.push(req.url()))
      await phone.goto(`${stack.gateway.url}/#/playground`)
      await phone.getByLabel('API key').fill(stack.devKey)
      await phone.getByRole('button', { name: 'Save keys' }).click()
      await phone.getByLabel('Model').first().waitFor()
      expect(await phone.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true)
      await phone.screenshot({ path: join(SHOTS, 'narrow-playground.png'), fullPage: true })
    } finally {
      await phone.close()
    }
  })

  it('fetched nothing from anywhere but the gateway', () => {
    const foreign = requested.filter((url) => !/^(data|blob):/.test(url) && !url.startsWith(`${stack.gateway.url}/`))
    expect(requested.length).toBeGreaterThan(0)
    expect(foreign).toEqual([])
  })
})
