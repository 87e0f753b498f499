export { createDevBackendApp } from './app.ts'
export { FAULT_HEADER, FAULTS, type Fault } from './faults.ts'
export {
  DEV_CHAT_MODEL,
  DEV_EMBEDDING_MODEL,
  DEV_IMAGE_EDIT_MODEL,
  DEV_IMAGE_MODEL,
  DEV_MODEL_IDS,
  DEV_STT_MODEL,
  DEV_TTS_MODEL,
} from './models.ts'
export type { DevBackendOptions } from './options.ts'
export { type DevBackend, type DevBackendStats, startDevBackend } from './server.ts'
export { countTokens, tokenize } from './tokenizer.ts'
