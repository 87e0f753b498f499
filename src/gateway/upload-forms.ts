import type { MultipartUploadOptions } from './http/multipart-upload.ts'
import { badRequest } from './http/openai-error.ts'

/** What a multipart route reads from its form, beside the model: its files and the fields it checks. */
export type UploadForm = Omit<MultipartUploadOptions, 'contentType' | 'limit'> & {
  /** The 400's message for a body that is not multipart/form-data. */
  wrongType: string
  /** Checks the text fields known before routing (the rest are checked by `beforeClose`, if at all). */
  check?: (fields: ReadonlyMap<string, string>) => void
}

/** POST /v1/audio/transcriptions: `file` and `model`; the other fields are the provider's to read. */
export const TRANSCRIPTION_FORM: UploadForm = {
  wrongType: 'send the audio as multipart/form-data with `file` and `model` fields',
  fileFields: ['file'],
  requiredFile: { names: ['file'], param: 'file' },
}

const IMAGE_FORMATS = new Set(['b64_json', 'url'])

function imageResponseFormat(fields: ReadonlyMap<string, string>): void {
  const format = fields.get('response_format')
  if (format === undefined) return
  if (!IMAGE_FORMATS.has(format)) {
    throw badRequest(
      `response_format must be "b64_json" (got ${JSON.stringify(format)})`,
      'response_format',
      'invalid_value',
    )
  }
  if (format === 'url') {
    throw badRequest(
      'response_format "url" is not available: 0G providers return images inline. Use response_format "b64_json".',
      'response_format',
      'unsupported_response_format',
    )
  }
}

/**
 * POST /v1/images/edits: one or more `image` (or `image[]`) files, an optional `mask`, and text fields. As for
 * generations, `url` answers are refused (0G providers return images inline, nobody here could serve a URL), and a
 * form without response_format gets `b64_json` added before its closing delimiter: a provider's default may be URLs.
 * A `url` sent after the model and the image is only known once the upload is streaming: it then fails with the
 * same 400.
 */
export const IMAGE_EDIT_FORM: UploadForm = {
  wrongType: 'send the image as multipart/form-data with `image`, `prompt` and `model` fields',
  fileFields: ['image', 'image[]', 'mask'],
  requiredFile: { names: ['image', 'image[]'], param: 'image' },
  uniqueFields: ['response_format'],
  check: imageResponseFormat,
  beforeClose: (fields) => {
    imageResponseFormat(fields)
    return fields.has('response_format') ? undefined : { response_format: 'b64_json' }
  },
}
