import { useState } from 'preact/hooks'
import { type AnswerInfo, answerInfo, call } from '../api.ts'
import { AnswerMeta } from '../components/answer-meta.tsx'
import { ErrorBox } from '../components/error-box.tsx'
import type { ModelObject, ProviderRow } from '../types.ts'
import { ModelFields, useModelChoice } from './model-choice.tsx'

/** Speech to text: an audio file uploaded as multipart form data, the text it holds shown. */
export function TranscriptionPanel({ models, rows }: { models: ModelObject[]; rows: ProviderRow[] }) {
  const choice = useModelChoice(models, 'speech-to-text')
  const [file, setFile] = useState<File>()
  const [text, setText] = useState<string>()
  const [info, setInfo] = useState<AnswerInfo>()
  const [error, setError] = useState<Error>()
  const [busy, setBusy] = useState(false)

  async function transcribe(e: Event) {
    e.preventDefault()
    const model = choice.model
    if (!model || !file) return
    setBusy(true)
    setError(undefined)
    try {
      const form = new FormData()
      form.append('model', model.id)
      form.append('file', file, file.name)
      const res = await call('/v1/audio/transcriptions', { auth: 'api', body: form, headers: choice.headers })
      const meta = answerInfo(res)
      const body = (await res.json()) as { text: string; usage?: { cost?: number } }
      setText(body.text)
      setInfo({ ...meta, cost: body.usage?.cost })
    } catch (err) {
      setError(err as Error)
    } finally {
      setBusy(false)
    }
  }

  return (
    <section>
      <form onSubmit={transcribe}>
        <ModelFields choice={choice} rows={rows} />
        <label>
          Audio file
          <input type="file" accept="audio/*" onChange={(e) => setFile(e.currentTarget.files?.[0])} />
        </label>
        <button type="submit" disabled={busy || !file || !choice.model}>
          {busy ? 'Transcribing…' : 'Transcribe'}
        </button>
      </form>
      <ErrorBox error={error} />
      {text !== undefined && (
        <blockquote class="transcript" data-testid="transcript">
          {text || '(no speech heard)'}
        </blockquote>
      )}
      {info && <AnswerMeta info={info} model={choice.model} />}
    </section>
  )
}
