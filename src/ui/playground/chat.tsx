import { useState } from 'preact/hooks'
import { type AnswerInfo, answerInfo, call, GatewayCallError } from '../api.ts'
import { AnswerMeta } from '../components/answer-meta.tsx'
import { ErrorBox } from '../components/error-box.tsx'
import { readEvents } from '../sse.ts'
import type { ModelObject, ProviderRow } from '../types.ts'
import { ModelFields, useModelChoice } from './model-choice.tsx'

type Message = { role: 'user' | 'assistant'; content: string }

type ChatChunk = {
  choices?: Array<{ delta?: { content?: string | null } }>
  usage?: { cost?: number } | null
  error?: { message: string; code?: string | null }
}

/** A streamed chat: the answer read from the SSE stream as it arrives; its usage chunk carries the fee. */
export function ChatPanel({ models, rows }: { models: ModelObject[]; rows: ProviderRow[] }) {
  const choice = useModelChoice(models, 'chatbot')
  const [messages, setMessages] = useState<Message[]>([])
  const [prompt, setPrompt] = useState('')
  const [info, setInfo] = useState<AnswerInfo>()
  const [error, setError] = useState<Error>()
  const [running, setRunning] = useState<AbortController>()

  async function send(e: Event) {
    e.preventDefault()
    const model = choice.model
    if (!model || !prompt.trim() || running) return
    const history: Message[] = [...messages, { role: 'user', content: prompt }]
    setMessages([...history, { role: 'assistant', content: '' }])
    setPrompt('')
    setError(undefined)
    setInfo(undefined)
    const abort = new AbortController()
    setRunning(abort)
    let text = ''
    try {
      const res = await call('/v1/chat/completions', {
        auth: 'api',
        json: { model: model.id, messages: history, stream: true, stream_options: { include_usage: true } },
        headers: choice.headers,
        signal: abort.signal,
      })
      const meta = answerInfo(res)
      setInfo(meta)
      await readEvents(res, (data) => {
        if (data === '[DONE]') return
        const chunk = JSON.parse(data) as ChatChunk
        // The gateway ends a stream a provider broke with an OpenAI error event.
        if (chunk.error) throw new GatewayCallError(chunk.error.message, 0, chunk.error.code ?? null, meta.requestId)
        const delta = chunk.choices?.[0]?.delta?.content
        if (delta) {
          text += delta
          setMessages([...history, { role: 'assistant', content: text }])
        }
        const cost = chunk.usage?.cost
        if (cost !== undefined) setInfo({ ...meta, cost })
      })
    } catch (err) {
      if (!abort.signal.aborted) setError(err as Error)
    } finally {
      setRunning(undefined)
    }
  }

  return (
    <section>
      <form onSubmit={send}>
        <ModelFields choice={choice} rows={rows} />
        <div class="messages" data-testid="chat-messages" aria-live="polite">
          {messages.map((m, i) => (
            <div key={i} class={`message ${m.role}`}>
              <b>{m.role}</b>
              <p data-testid={m.role === 'assistant' ? 'assistant-message' : undefined}>{m.content || '…'}</p>
            </div>
          ))}
        </div>
        <label>
          Message
          <textarea rows={3} value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} />
        </label>
        <div class="row">
          <button type="submit" disabled={!!running || !choice.model}>
            Send
          </button>
          {running && (
            <button type="button" class="secondary" onClick={() => running.abort()}>
              Stop
            </button>
          )}
          <button
            type="button"
            class="secondary"
            disabled={!!running}
            onClick={() => {
              setMessages([])
              setInfo(undefined)
            }}
          >
            Clear
          </button>
          <span class="muted" data-testid="chat-status">
            {running ? 'streaming…' : info ? 'done' : ''}
          </span>
        </div>
      </form>
      <ErrorBox error={error} />
      {info && <AnswerMeta info={info} model={choice.model} />}
    </section>
  )
}
