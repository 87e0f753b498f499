/**
 * A refusal by the fine-tuning node. The body is 0G's broker shape `{error: "<message>"}`: the SDK throws
 * `new Error(body.error)` (fine-tuning/provider/provider.js fetchJSON), so the message is what its user reads. `code`
 * is ours, for scripts.
 */
export class FineTuningError extends Error {
  override name = 'FineTuningError'
  readonly status: number
  readonly code: string

  constructor(status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }

  toJSON() {
    return { error: this.message, code: this.code }
  }
}
