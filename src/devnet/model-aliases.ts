import {
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_EDIT_MODEL,
  DEV_IMAGE_MODEL,
  DEV_STT_MODEL,
  DEV_TTS_MODEL,
} from './backends/models.ts'

/**
 * The aliases the dev stack ships: the OpenAI model names that SDK examples and LangChain default to
 * (`gpt-3.5-turbo` for ChatOpenAI, `text-embedding-ada-002` for OpenAIEmbeddings), each on the dev model of its kind;
 * an image model names one target per service (generations, edits), and each call takes the one for its endpoint.
 */
export const DEV_MODEL_ALIASES: ReadonlyArray<readonly [alias: string, target: string]> = [
  ['gpt-3.5-turbo', DEV_CHAT_MODEL],
  ['gpt-3.5-turbo-instruct', DEV_CHAT_MODEL],
  ['gpt-4o', DEV_CHAT_MODEL],
  ['gpt-4o-mini', DEV_CHAT_MODEL],
  ['gpt-4.1-mini', DEV_CHAT_MODEL],
  ['text-embedding-ada-002', DEV_EMBEDDING_MODEL],
  ['text-embedding-3-small', DEV_EMBEDDING_MODEL],
  ['dall-e-2', DEV_IMAGE_MODEL],
  ['dall-e-3', DEV_IMAGE_MODEL],
  ['gpt-image-1', DEV_IMAGE_MODEL],
  // Image models edit too: the same names, on the image-editing service, for images.edit.
  ['dall-e-2', DEV_IMAGE_EDIT_MODEL],
  ['gpt-image-1', DEV_IMAGE_EDIT_MODEL],
  ['whisper-1', DEV_STT_MODEL],
  ['gpt-4o-mini-transcribe', DEV_STT_MODEL],
  ['tts-1', DEV_TTS_MODEL],
  ['tts-1-hd', DEV_TTS_MODEL],
  ['gpt-4o-mini-tts', DEV_TTS_MODEL],
]
