/** A response body in a test: its shape is what the assertions check. */
// biome-ignore lint/suspicious/noExplicitAny: test bodies are checked by assertions, not by types
export type Json = any

export async function json(res: Response): Promise<Json> {
  return res.json()
}
