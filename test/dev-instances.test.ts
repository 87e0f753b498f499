import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import OpenAI, { toFile } from 'openai'
import { afterAll, expect, it } from 'vitest'
import { DEV_CHAT_MODEL } from '../src/devnet/backends/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'zg-dev-instances-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Requests one gateway instance counted, by its /metrics (open to loopback). */
async function counted(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return text
    .split('\n')
    .filter((l) => l.startsWith('zg_gateway_requests_total{') && l.includes('route="/v1/chat/completions"'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0)
}

it('zg-gateway dev --instances 2: two gateway processes on one Postgres behind a round-robin front, all stopped on SIGTERM', async () => {
  const dev = spawn(
    process.execPath,
    ['bin/zg-gateway.js', 'dev', '--instances', '2', '--port', '0', '--chain-port', '0', '--data-dir', dir, '--json'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } },
  )
  let out = ''
  let err = ''
  dev.stderr.on('data', (d) => {
    err += d
  })
  const info = await new Promise<{ ready: string; apiKey: string; instances: string[]; store: string }>(
    (resolve, reject) => {
      dev.stdout.on('data', (d) => {
        out += d
        try {
          resolve(JSON.parse(out))
        } catch {
          // not whole yet
        }
      })
      dev.once('exit', (code) => reject(new Error(`dev exited ${code}:\n${out}\n${err.slice(-4000)}`)))
    },
  )
  try {
    expect(info.store).toBe('postgres')
    expect(info.instances).toHaveLength(2)
    const client = new OpenAI({ baseURL: info.ready, apiKey: info.apiKey, maxRetries: 0 })
    for (let i = 0; i < 6; i++) {
      if (i % 2) {
        const stream = await client.chat.completions.create({
          model: DEV_CHAT_MODEL,
          messages: [{ role: 'user', content: `hello ${i}` }],
          max_tokens: 8,
          stream: true,
        })
        let text = ''
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
        expect(text.length).toBeGreaterThan(0)
      } else {
        const answer = await client.chat.completions.create({
          model: DEV_CHAT_MODEL,
          messages: [{ role: 'user', content: `hello ${i}` }],
          max_tokens: 8,
        })
        expect(answer.choices[0]?.message.content?.length).toBeGreaterThan(0)
      }
    }
    // Each instance served its turn.
    const perInstance = await Promise.all(info.instances.map(counted))
    expect(perInstance).toEqual([3, 3])

    // Fine-tuning across the instances: a file uploaded to one is trained on by a job created on the other; the
    // job, its events and the tuned model are seen by both.
    const [one, two] = info.instances.map(
      (url) => new OpenAI({ baseURL: `${url}/v1`, apiKey: info.apiKey, maxRetries: 0 }),
    ) as [OpenAI, OpenAI]
    const lines = Array.from({ length: 10 }, (_, i) =>
      JSON.stringify({
        messages: [
          { role: 'user', content: `q${i}` },
          { role: 'assistant', content: 'ahoy matey anchor keel brine starboard helm galley mast sail tide' },
        ],
      }),
    )
    const file = await one.files.create({
      file: await toFile(Buffer.from(lines.join('\n')), 'd.jsonl'),
      purpose: 'fine-tune',
    })
    const created = await two.fineTuning.jobs.create({
      model: DEV_CHAT_MODEL,
      training_file: file.id,
      suffix: 'shared',
    })
    let job = await one.fineTuning.jobs.retrieve(created.id)
    for (const deadline = Date.now() + 60_000; !['succeeded', 'failed', 'cancelled'].includes(job.status); ) {
      if (Date.now() > deadline) throw new Error(`job still ${job.status}`)
      await new Promise((r) => setTimeout(r, 300))
      job = await one.fineTuning.jobs.retrieve(created.id)
    }
    expect(job.status).toBe('succeeded')
    for (const c of [one, two]) {
      expect((await c.fineTuning.jobs.listEvents(created.id)).data[0]!.message).toBe(
        'The job has successfully completed',
      )
      const answer = await c.chat.completions.create({
        model: job.fine_tuned_model!,
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 8,
      })
      expect(answer.choices[0]!.message.content).toMatch(
        /ahoy|matey|anchor|keel|brine|starboard|helm|galley|mast|sail|tide/i,
      )
    }
  } finally {
    const exited = new Promise<number | null>((r) => dev.once('exit', (code) => r(code)))
    dev.kill('SIGTERM')
    expect(await exited).toBe(0)
  }
  // The second instance was a process of its own: it is gone with the dev stack.
  await expect(fetch(`${info.instances[1]}/healthz`)).rejects.toThrow()
}, 120_000)
