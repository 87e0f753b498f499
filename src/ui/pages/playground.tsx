import { useState } from 'preact/hooks'
import { getJson } from '../api.ts'
import { ErrorBox } from '../components/error-box.tsx'
import { ChatPanel } from '../playground/chat.tsx'
import { ImagePanel } from '../playground/image.tsx'
import { SpeechPanel } from '../playground/speech.tsx'
import { TranscriptionPanel } from '../playground/transcription.tsx'
import { useKeys } from '../session.ts'
import type { ModelObject, ProviderRow } from '../types.ts'
import { useLoad } from '../use-load.ts'

const TABS = [
  ['chat', 'Chat', ChatPanel],
  ['image', 'Image', ImagePanel],
  ['speech', 'Speech', SpeechPanel],
  ['transcription', 'Transcription', TranscriptionPanel],
] as const

/** Calls the gateway's OpenAI API with the session's API key; every panel stays mounted, keeping its answer. */
export function Playground() {
  const keys = useKeys()
  const [tab, setTab] = useState<string>('chat')
  const models = useLoad(() => getJson<{ data: ModelObject[] }>('/v1/models', 'api').then((r) => r.data), [keys.apiKey])
  // With the admin key, the provider pickers also show each provider's level and circuit.
  const providers = useLoad(
    () =>
      keys.adminKey
        ? getJson<{ data: ProviderRow[] }>('/admin/providers', 'admin').then((r) => r.data)
        : Promise.resolve([]),
    [keys.adminKey],
  )
  return (
    <>
      <h2>Playground</h2>
      <div class="tabs" role="tablist">
        {TABS.map(([id, label]) => (
          <button
            key={id}
            type="button"
            role="tab"
            aria-selected={tab === id}
            class={tab === id ? 'tab active' : 'tab'}
            onClick={() => setTab(id)}
          >
            {label}
          </button>
        ))}
      </div>
      <ErrorBox error={models.error} />
      {models.data &&
        TABS.map(([id, , Panel]) => (
          <div key={id} role="tabpanel" hidden={tab !== id}>
            <Panel models={models.data ?? []} rows={providers.data ?? []} />
          </div>
        ))}
    </>
  )
}
