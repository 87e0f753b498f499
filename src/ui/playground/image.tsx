import { useState } from 'preact/hooks'
import { type AnswerInfo, answerInfo, call } from '../api.ts'
import { AnswerMeta } from '../components/answer-meta.tsx'
import { ErrorBox } from '../components/error-box.tsx'
import type { ModelObject, ProviderRow } from '../types.ts'
import { ModelFields, useModelChoice } from './model-choice.tsx'

/** The image's type, from its first bytes in base64 (0G providers answer PNG, JPEG or WebP). */
function imageType(b64: string): string {
  if (b64.startsWith('/9j/')) return 'image/jpeg'
  if (b64.startsWith('UklGR')) return 'image/webp'
  return 'image/png'
}

/** Image generation: 0G providers answer inline (b64_json), shown as a data: URL. */
export function ImagePanel({ models, rows }: { models: ModelObject[]; rows: ProviderRow[] }) {
  const choice = useModelChoice(models, 'text-to-image')
  const [prompt, setPrompt] = useState('')
  const [size, setSize] = useState('512x512')
  const [image, setImage] = useState<{ src: string; alt: string }>()
  const [info, setInfo] = useState<AnswerInfo>()
  const [error, setError] = useState<Error>()
  const [busy, setBusy] = useState(false)

  async function generate(e: Event) {
    e.preventDefault()
    const model = choice.model
    if (!model || !prompt.trim()) return
    setBusy(true)
    setError(undefined)
    try {
      const res = await call('/v1/images/generations', {
        auth: 'api',
        json: { model: model.id, prompt, size, n: 1, response_format: 'b64_json' },
        headers: choice.headers,
      })
      const meta = answerInfo(res)
      const body = (await res.json()) as { data: Array<{ b64_json?: string }>; usage?: { cost?: number } }
      const b64 = body.data[0]?.b64_json ?? ''
      setImage({ src: `data:${imageType(b64)};base64,${b64}`, alt: prompt })
      setInfo({ ...meta, cost: body.usage?.cost })
    } catch (err) {
      setError(err as Error)
    } finally {
      setBusy(false)
    }
  }

  return (
    <section>
      <form onSubmit={generate}>
        <ModelFields choice={choice} rows={rows} />
        <label>
          Prompt
          <textarea rows={2} value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} />
        </label>
        <label>
          Size
          <select value={size} onChange={(e) => setSize(e.currentTarget.value)}>
            {['256x256', '512x512', '1024x1024'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <button type="submit" disabled={busy || !choice.model}>
          {busy ? 'Generating…' : 'Generate'}
        </button>
      </form>
      <ErrorBox error={error} />
      {image && <img class="result" src={image.src} alt={image.alt} data-testid="image-result" />}
      {info && <AnswerMeta info={info} model={choice.model} />}
    </section>
  )
}
