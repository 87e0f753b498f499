/**
 * The dev models. Their ids say what they are: deterministic stand-ins for tests and the devnet, not inference.
 */
export const DEV_CHAT_MODEL = 'dev/chat-deterministic'
export const DEV_EMBEDDING_MODEL = 'dev/embedding-hash-256'
export const DEV_IMAGE_MODEL = 'dev/image-procedural'
export const DEV_STT_MODEL = 'dev/stt-tone'
/**
 * Text-to-speech: espeak-ng (a real formant synthesizer) when it is installed, otherwise tones derived from the text.
 * One id either way, so the devnet's on-chain registration does not depend on the machine; /v1/models and every
 * answer's x-dev-tts-engine header say which engine spoke.
 */
export const DEV_TTS_MODEL = 'dev/tts-espeak-or-tone'
export const DEV_IMAGE_EDIT_MODEL = 'dev/image-edit-procedural'

export const DEV_MODEL_IDS = [
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_MODEL,
  DEV_STT_MODEL,
  DEV_TTS_MODEL,
  DEV_IMAGE_EDIT_MODEL,
] as const

/** Fixed so that /v1/models is byte-for-byte stable (2026-11-01T00:00:00Z). */
const CREATED = 1_793_491_200

export const DEV_OWNER = 'zg-gateway-dev'

/**
 * `ttsEngine` describes the engine behind the TTS model on this machine, e.g. "espeak-ng 1.51" or "tone". Loaded
 * adapters follow the dev models, as vLLM lists its LoRA modules: `root` the adapter's path, `parent` its base.
 */
export function listModels(
  maxContextTokens: number,
  ttsEngine: string,
  adapters: readonly { name: string; path: string; parent: string }[] = [],
) {
  const adapterCards = adapters.map(({ name, path, parent }) => ({
    id: name,
    object: 'model',
    created: CREATED,
    owned_by: DEV_OWNER,
    root: path,
    parent,
    max_model_len: maxContextTokens,
  }))
  return {
    object: 'list',
    data: [
      ...DEV_MODEL_IDS.map((id) => ({
        id,
        object: 'model',
        created: CREATED,
        owned_by: DEV_OWNER,
        root: id,
        parent: null,
        // vLLM reports the context length here; only the text models have one.
        ...(id === DEV_CHAT_MODEL || id === DEV_EMBEDDING_MODEL ? { max_model_len: maxContextTokens } : {}),
        ...(id === DEV_TTS_MODEL ? { engine: ttsEngine } : {}),
      })),
      ...adapterCards,
    ],
  }
}
