import type { Context } from 'hono'
import { BackendError, checkModel } from './errors.ts'
import { IMAGE_SIZES, pixelSize } from './images.ts'
import { DEV_IMAGE_EDIT_MODEL } from './models.ts'
import { readForm } from './multipart.ts'
import { type DecodedImage, decodePng, encodePng, PngDecodeError } from './png.ts'
import { drawProcedural } from './procedural-image.ts'

/** OpenAI's limits for gpt-image-1 edits: up to 16 images, n up to 10. */
const MAX_IMAGES = 16
const MAX_N = 10
/** The uploaded files in all; OpenAI takes 50 MB per image, a dev model needs less. */
export const MAX_EDIT_UPLOAD_BYTES = 25 * 1024 * 1024
/** The largest image decoded: 2048 x 2048 holds every size OpenAI's image models write. */
const MAX_PIXELS = 2048 * 2048
const MAX_PROMPT_CHARS = 32_000
/** How strongly the prompt's picture shows through where the image is edited. */
const BLEND = 0.55

type Rgba = { width: number; height: number; rgb: Uint8ClampedArray; alpha: Uint8ClampedArray | undefined }

/** Nearest-neighbour scaling: the dev model's output has to match a requested size, not look good. */
function scaled(image: DecodedImage, width: number, height: number): Rgba {
  if (image.width === width && image.height === height) return image
  const rgb = new Uint8ClampedArray(width * height * 3)
  const alpha = image.alpha && new Uint8ClampedArray(width * height)
  for (let y = 0; y < height; y++) {
    const sy = Math.min(image.height - 1, Math.floor((y * image.height) / height))
    for (let x = 0; x < width; x++) {
      const sx = Math.min(image.width - 1, Math.floor((x * image.width) / width))
      const from = sy * image.width + sx
      const to = y * width + x
      rgb.set(image.rgb.subarray(from * 3, from * 3 + 3), to * 3)
      if (alpha) alpha[to] = image.alpha![from]!
    }
  }
  return { width, height, rgb, alpha }
}

function decoded(bytes: Buffer, param: string, label: string): DecodedImage {
  try {
    return decodePng(bytes, MAX_PIXELS)
  } catch (err) {
    if (err instanceof PngDecodeError) {
      throw new BackendError(400, `${label} is not a PNG ${DEV_IMAGE_EDIT_MODEL} can read: ${err.message}`, param)
    }
    throw err
  }
}

function intField(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new BackendError(400, `${name} must be an integer from ${min} to ${max}`, name)
  }
  return n
}

/**
 * POST /v1/images/edits (multipart, OpenAI's images.edit: `image` or `image[]` one or more times, `prompt`, `mask`,
 * `model`, `n`, `size`, `response_format`). The images (PNG) are averaged, scaled to `size` (else the first image's
 * size), and the prompt's procedural picture is blended in, only where the mask is transparent when there is one.
 * Deterministic; always b64_json PNGs.
 */
export async function imageEdits(c: Context): Promise<Response> {
  const declared = Number(c.req.header('content-length') ?? 0)
  if (declared > MAX_EDIT_UPLOAD_BYTES + 1024 * 1024) {
    throw new BackendError(413, `The upload is larger than ${MAX_EDIT_UPLOAD_BYTES / 1024 / 1024} MiB.`, 'image')
  }
  const body = c.req.raw.body
  if (!body) throw new BackendError(400, 'Expected a multipart/form-data body')
  const form = await readForm(body, c.req.header('content-type'), {
    fileFields: ['image', 'image[]', 'mask'],
    maxFileBytes: MAX_EDIT_UPLOAD_BYTES,
    maxFieldBytes: MAX_PROMPT_CHARS * 4,
    fileParam: 'image',
  })
  const field = (name: string) => form.fields.get(name)?.[0]
  checkModel(field('model'), DEV_IMAGE_EDIT_MODEL)
  const uploads = [...(form.files.get('image') ?? []), ...(form.files.get('image[]') ?? [])]
  if (uploads.length === 0) throw new BackendError(400, 'The form has no image file', 'image')
  if (uploads.length > MAX_IMAGES) throw new BackendError(400, `At most ${MAX_IMAGES} images can be edited`, 'image')
  const prompt = field('prompt')
  if (!prompt) throw new BackendError(400, 'The form has no prompt', 'prompt')
  if ([...prompt].length > MAX_PROMPT_CHARS) {
    throw new BackendError(400, `The prompt is longer than ${MAX_PROMPT_CHARS} characters`, 'prompt')
  }
  const n = intField(field('n'), 'n', 1, MAX_N) ?? 1
  const format = field('response_format')
  // Nothing here serves files, so a URL would be a lie.
  if (format !== undefined && format !== 'b64_json') {
    throw new BackendError(400, `${DEV_IMAGE_EDIT_MODEL} returns images only as b64_json.`, 'response_format')
  }
  const outputFormat = field('output_format')
  if (outputFormat !== undefined && outputFormat !== 'png') {
    throw new BackendError(400, `${DEV_IMAGE_EDIT_MODEL} writes only png.`, 'output_format')
  }
  const size = field('size')
  if (size !== undefined && size !== 'auto' && !(IMAGE_SIZES as readonly string[]).includes(size)) {
    throw new BackendError(400, `size must be auto or one of ${IMAGE_SIZES.join(', ')}`, 'size')
  }

  const first = decoded(uploads[0]!.bytes, 'image', uploads.length > 1 ? 'image 1' : 'The image')
  const { width, height } = size === undefined || size === 'auto' ? first : pixelSize(size)
  // The images are averaged into one base: each is decoded, scaled and added in turn, so one is in memory at a time.
  const sum = new Float64Array(width * height * 3)
  for (const [i, upload] of uploads.entries()) {
    const image = i === 0 ? first : decoded(upload.bytes, 'image', `image ${i + 1}`)
    const { rgb } = scaled(image, width, height)
    for (let k = 0; k < sum.length; k++) sum[k]! += rgb[k]!
  }
  const maskFile = form.files.get('mask')?.[0]
  let editable: Uint8ClampedArray | undefined
  if (maskFile) {
    const mask = decoded(maskFile.bytes, 'mask', 'The mask')
    if (!mask.alpha) throw new BackendError(400, 'The mask has no alpha channel', 'mask')
    if (mask.width !== first.width || mask.height !== first.height) {
      throw new BackendError(400, 'The mask must be the same size as the image', 'mask')
    }
    editable = scaled(mask, width, height).alpha
  }

  const data = Array.from({ length: n }, (_, index) => {
    const pattern = drawProcedural(prompt, `edit/${index}`, width, height)
    const out = new Uint8ClampedArray(width * height * 3)
    for (let p = 0; p < width * height; p++) {
      // OpenAI's rule: the mask's fully transparent pixels are the ones to edit.
      const weight = BLEND * (editable ? 1 - editable[p]! / 255 : 1)
      for (let ch = 0; ch < 3; ch++) {
        const k = p * 3 + ch
        out[k] = (sum[k]! / uploads.length) * (1 - weight) + pattern[k]! * weight
      }
    }
    return { b64_json: encodePng(width, height, out).toString('base64') }
  })
  return c.json({ created: Math.floor(Date.now() / 1000), data })
}
