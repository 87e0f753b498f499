/** A float vector as OpenAI's base64: little-endian float32 bytes. */
function toBase64(vector: number[]): string {
  const bytes = Buffer.alloc(vector.length * 4)
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i]!, i * 4)
  return bytes.toString('base64')
}

/**
 * Re-encodes an embeddings response whose vectors came back as float arrays although base64 was asked for.
 * A response that is already base64 (or not a success) passes through untouched.
 */
export async function embeddingsAsBase64(response: Response): Promise<Response> {
  if (response.status !== 200) return response
  const text = await response.text()
  let body: { data?: Array<{ embedding?: unknown }> }
  try {
    body = JSON.parse(text)
  } catch {
    return new Response(text, response)
  }
  if (!body.data?.some((d) => Array.isArray(d.embedding))) return new Response(text, response)
  for (const d of body.data) if (Array.isArray(d.embedding)) d.embedding = toBase64(d.embedding as number[])
  return new Response(JSON.stringify(body), { status: 200, headers: response.headers })
}
