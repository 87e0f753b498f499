import type { Context } from 'hono'
import { z } from 'zod'
import { BackendError, checkModel, readBody } from './errors.ts'
import { DEV_IMAGE_MODEL } from './models.ts'
import { encodePng } from './png.ts'
import { drawProcedural } from './procedural-image.ts'

/** The sizes OpenAI's image models accept; "auto" is the square one. */
export const IMAGE_SIZES = [
  '256x256',
  '512x512',
  '1024x1024',
  '1536x1024',
  '1024x1536',
  '1792x1024',
  '1024x1792',
] as const

const imageRequestSchema = z.looseObject({
  model: z.string().nullish(),
  prompt: z.string().min(1),
  n: z.number().int().min(1).max(10).nullish(),
  size: z.enum([...IMAGE_SIZES, 'auto']).nullish(),
  response_format: z.enum(['url', 'b64_json']).nullish(),
  output_format: z.string().nullish(),
  seed: z.number().int().nullish(),
})

export function pixelSize(size: string | null | undefined): { width: number; height: number } {
  const [width, height] = (size == null || size === 'auto' ? '1024x1024' : size).split('x').map(Number)
  return { width: width!, height: height! }
}

/** POST /v1/images/generations: PNGs drawn procedurally, always as b64_json. */
export async function imageGenerations(c: Context): Promise<Response> {
  const req = await readBody(c, imageRequestSchema)
  checkModel(req.model, DEV_IMAGE_MODEL)
  // Nothing here serves files, so a URL would be a lie.
  if (req.response_format === 'url') {
    throw new BackendError(
      400,
      `${DEV_IMAGE_MODEL} returns images only as b64_json; url is not supported.`,
      'response_format',
    )
  }
  if (req.output_format != null && req.output_format !== 'png') {
    throw new BackendError(400, `${DEV_IMAGE_MODEL} writes only png.`, 'output_format')
  }
  const { width, height } = pixelSize(req.size)
  const data = Array.from({ length: req.n ?? 1 }, (_, index) => {
    const pixels = drawProcedural(req.prompt, `${req.seed ?? ''}/${index}`, width, height)
    return { b64_json: encodePng(width, height, pixels).toString('base64') }
  })
  return c.json({ created: Math.floor(Date.now() / 1000), data })
}
