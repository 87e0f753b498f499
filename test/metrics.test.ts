/**
 * GET /metrics after a load run on the dev stack: the counters agree with what the clients saw (statuses, usage)
 * and with the usage ledger (fees); the provider nodes count admissions and settlements.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'
import { startTestStack } from './support/dev-stack.ts'

type Sample = { name: string; labels: Record<string, string>; value: number }

/** The samples of a Prometheus text exposition (no escapes in our label values). */
function parse(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[k!] = v!
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return samples
}

const sum = (samples: Sample[], name: string, match: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0)

let stack: Awaited<ReturnType<typeof startTestStack>>

beforeAll(async () => {
  stack = await startTestStack()
})

afterAll(async () => {
  await stack?.dispose()
})

it('counts requests, tokens, fees and states as the clients and the ledger saw them', async () => {
  const url = stack.gateway.url
  const created = await fetch(`${url}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.adminKey}`, 'content-type': 'application/json' },
    // One neuron: every call's worst case is over it.
    body: JSON.stringify({ name: 'tiny', budget: '0.000000000000000001' }),
  })
  expect(created.status).toBe(201)
  const tinyKey = ((await created.json()) as { key: string }).key

  const statuses = new Map<number, number>()
  let input = 0
  let output = 0
  let streamed = 0
  const call = async (i: number) => {
    const stream = i % 2 === 0
    const model = i % 10 === 7 ? 'no-such-model' : DEV_CHAT_MODEL
    const key = i % 10 === 9 ? tinyKey : stack.devKey
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model,
        messages: [{ role: 'user', content: `count ${i}` }],
        max_tokens: 8,
        stream,
        ...(stream && { stream_options: { include_usage: true } }),
      }),
    })
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
    const text = await res.text()
    if (res.status !== 200) return
    if (stream) streamed++
    const usages = stream
      ? text
          .split('\n')
          .filter((l) => l.startsWith('data: {'))
          .map((l) => JSON.parse(l.slice(6)).usage)
          .filter(Boolean)
      : [JSON.parse(text).usage]
    for (const u of usages) {
      input += u.prompt_tokens
      output += u.completion_tokens
    }
  }
  const N = 40
  for (let i = 0; i < N; i += 4) await Promise.all([0, 1, 2, 3].map((k) => call(i + k)))
  expect(statuses.get(200)).toBeGreaterThan(0)
  expect(statuses.get(404)).toBeGreaterThan(0)
  expect(statuses.get(429)).toBeGreaterThan(0)
  // The bookkeeping waits in the off-path queue (5 ms at most) and the checks run after it.
  await new Promise((r) => setTimeout(r, 300))

  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toContain('text/plain')
  const m = parse(await res.text())
  const route = '/v1/chat/completions'
  expect(sum(m, 'zg_gateway_requests_total', { route })).toBe(N)
  for (const [status, n] of statuses)
    expect(sum(m, 'zg_gateway_requests_total', { route, status: String(status) })).toBe(n)
  expect(sum(m, 'zg_gateway_refusals_total', { reason: 'unknown_model' })).toBe(statuses.get(404))
  expect(sum(m, 'zg_gateway_refusals_total', { reason: 'budget' })).toBe(statuses.get(429))
  expect(sum(m, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'input' })).toBe(input)
  expect(sum(m, 'gen_ai_client_token_usage_sum', { gen_ai_token_type: 'output' })).toBe(output)
  const fees = (await stack.gateway.core.ledger.calls({ limit: 1000 })).reduce((a, c) => a + c.fee, 0n)
  expect(fees).toBeGreaterThan(0n)
  expect(sum(m, 'zg_gateway_fees_neuron_total')).toBeCloseTo(Number(fees), -2)
  expect(sum(m, 'gen_ai_server_request_duration_seconds_count', { route })).toBe(N)
  expect(sum(m, 'gen_ai_server_time_to_first_token_seconds_count')).toBe(streamed)
  expect(sum(m, 'gen_ai_server_time_per_output_token_seconds_count')).toBeGreaterThan(0)
  expect(sum(m, 'zg_gateway_overhead_seconds_count')).toBe(statuses.get(200))
  expect(sum(m, 'zg_gateway_ledger_commit_lag_seconds_count')).toBe(statuses.get(200))
  expect(sum(m, 'zg_gateway_verifications_total')).toBe(statuses.get(200))
  expect(sum(m, 'zg_gateway_requests_in_flight')).toBe(0)
  for (const { address } of stack.nodes) {
    const states = m.filter((s) => s.name === 'zg_gateway_provider_breaker_state' && s.labels.provider === address)
    expect(states.map((s) => s.labels.state).sort()).toEqual(['closed', 'half-open', 'open'])
    expect(states.reduce((a, s) => a + s.value, 0)).toBe(1)
  }
  expect(m.some((s) => s.name === 'zg_gateway_escrow_balance_neuron')).toBe(true)

  // The chat providers' nodes: admissions, then a settlement's results.
  const chatNodes = stack.nodes.filter((n) => n.spec.model === DEV_CHAT_MODEL)
  const scrape = async () =>
    (await Promise.all(chatNodes.map(async (n) => parse(await (await fetch(`${n.node.url}/metrics`)).text())))).flat()
  let nodes = await scrape()
  expect(sum(nodes, 'zg_provider_admissions_total')).toBe(statuses.get(200))
  expect(sum(nodes, 'zg_provider_requests_total', { status: '200' })).toBe(statuses.get(200))
  expect(sum(nodes, 'zg_provider_unsettled_fees_neuron')).toBeCloseTo(Number(fees), -2)
  for (const n of chatNodes) await n.node.settle()
  nodes = await scrape()
  expect(sum(nodes, 'zg_provider_settlement_runs_total', { result: 'ok' })).toBe(chatNodes.length)
  expect(sum(nodes, 'zg_provider_settlements_total', { outcome: 'SUCCESS' })).toBeGreaterThan(0)
  expect(sum(nodes, 'zg_provider_settled_neuron_total', { outcome: 'SUCCESS' })).toBeCloseTo(Number(fees), -2)
  expect(sum(nodes, 'zg_provider_unsettled_fees_neuron')).toBe(0)
})

it('answers /metrics from elsewhere than loopback only with the admin key', async () => {
  // Through fetch() the peer is unknown, so it counts as remote.
  const app = stack.gateway.app
  expect((await app.request('/metrics')).status).toBe(401)
  expect((await app.request('/metrics', { headers: { authorization: `Bearer ${stack.devKey}` } })).status).toBe(401)
  const ok = await app.request('/metrics', { headers: { authorization: `Bearer ${stack.adminKey}` } })
  expect(ok.status).toBe(200)
  expect(await ok.text()).toContain('zg_gateway_requests_total')
})
