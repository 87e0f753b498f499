import { errorTypeFor } from '../http/error-type.ts'
/**
 * A refusal by the provider node. The body is OpenAI-shaped ({error:{message,type,param,code}}), so OpenAI
 * clients pointed straight at `{url}/v1/proxy` read it, and the message keeps the 0G protocol's wording.
 */
export class ProviderError extends Error {
  override name = 'ProviderError'
  readonly status: number
  readonly code: string
  readonly type: string
  readonly param: string | null
  readonly headers: Record<string, string>

  constructor(
    status: number,
    code: string,
    message: string,
    options: { type?: string; param?: string | null; headers?: Record<string, string> } = {},
  ) {
    super(message)
    this.status = status
    this.code = code
    this.type = options.type ?? errorTypeFor(status)
    this.param = options.param ?? null
    this.headers = options.headers ?? {}
  }

  toJSON() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } }
  }
}
