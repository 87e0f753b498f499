import { DEV_CHAT_MODEL, DEV_EMBEDDING_MODEL, DEV_IMAGE_MODEL, DEV_STT_MODEL } from './backends/models.ts'

/**
 * The aliases the dev stack ships: the OpenAI model names that SDK examples and LangChain default to
 * (`gpt-3.5-turbo` for ChatOpenAI, `text-embedding-ada-002` for OpenAIEmbeddings), each on the dev model of its kind.
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
  ['whisper-1', DEV_STT_MODEL],
  ['gpt-4o-mini-transcribe', DEV_STT_MODEL],
]
