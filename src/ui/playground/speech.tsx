import { useEffect, useState } from 'preact/hooks'
import { type AnswerInfo, answerInfo, call } from '../api.ts'
import { AnswerMeta } from '../components/answer-meta.tsx'
import { ErrorBox } from '../components/error-box.tsx'
import type { ModelObject, ProviderRow } from '../types.ts'
import { ModelFields, useModelChoice } from './model-choice.tsx'

const VOICES = ['alloy', 'echo', 'fable', 'onyx', 'nova', 'shimmer']

/** Text to speech: the answer is the audio itself (WAV here), played from a blob: URL. */
export function SpeechPanel({ models, rows }: { models: ModelObject[]; rows: ProviderRow[] }) {
  const choice = useModelChoice(models, 'audio-generation')
  const [input, setInput] = useState('')
  const [voice, setVoice] = useState('alloy')
  const [audio, setAudio] = useState<{ url: string; seconds: string | null }>()
  const [info, setInfo] = useState<AnswerInfo>()
  const [error, setError] = useState<Error>()
  const [busy, setBusy] = useState(false)
  // Each clip's blob: URL is let go when the next replaces it.
  useEffect(() => () => audio && URL.revokeObjectURL(audio.url), [audio])

  async function speak(e: Event) {
    e.preventDefault()
    const model = choice.model
    if (!model || !input.trim()) return
    setBusy(true)
    setError(undefined)
    try {
      const res = await call('/v1/audio/speech', {
        auth: 'api',
        json: { model: model.id, input, voice, response_format: 'wav' },
        headers: choice.headers,
      })
      const meta = answerInfo(res)
      const blob = await res.blob()
      setAudio({ url: URL.createObjectURL(blob), seconds: res.headers.get('x-0g-audio-duration-seconds') })
      setInfo(meta)
    } catch (err) {
      setError(err as Error)
    } finally {
      setBusy(false)
    }
  }

  return (
    <section>
      <form onSubmit={speak}>
        <ModelFields choice={choice} rows={rows} />
        <label>
          Text
          <textarea rows={2} value={input} onInput={(e) => setInput(e.currentTarget.value)} />
        </label>
        <label>
          Voice
          <select value={voice} onChange={(e) => setVoice(e.currentTarget.value)}>
            {VOICES.map((v) => (
              <option key={v}>{v}</option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={busy || !choice.model}>
          {busy ? 'Speaking…' : 'Speak'}
        </button>
      </form>
      <ErrorBox error={error} />
      {audio && (
        <p>
          {/* biome-ignore lint/a11y/useMediaCaption: generated speech has no captions; its text is above */}
          <audio controls src={audio.url} data-testid="speech-audio" />
          {audio.seconds && <span class="muted"> {audio.seconds} s</span>}
        </p>
      )}
      {info && <AnswerMeta info={info} model={choice.model} />}
    </section>
  )
}
