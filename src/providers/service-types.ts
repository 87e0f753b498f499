/**
 * The 0G service type that serves each OpenAI endpoint: what discovery lists, and which target of an alias
 * with one per kind of service (`gpt-image-1` for generations and edits) fits a call.
 */
const SERVICE_TYPE_OF_ENDPOINT: Record<string, string> = {
  'chat/completions': 'chatbot',
  completions: 'chatbot',
  embeddings: 'embedding',
  'images/generations': 'text-to-image',
  'images/edits': 'image-editing',
  'audio/transcriptions': 'speech-to-text',
  'audio/translations': 'speech-to-text',
  'audio/speech': 'audio-generation',
}

export function serviceTypeOfEndpoint(endpoint: string): string | undefined {
  return SERVICE_TYPE_OF_ENDPOINT[endpoint]
}

/** The 0G service types some endpoint of the gateway serves; discovery leaves the others out. */
export const SERVED_SERVICE_TYPES: ReadonlySet<string> = new Set(Object.values(SERVICE_TYPE_OF_ENDPOINT))
