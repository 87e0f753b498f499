import type { AnswerInfo } from '../api.ts'
import { format0G, priceText, shortAddress } from '../format.ts'
import { receiptHref } from '../router.ts'
import type { ModelObject } from '../types.ts'

/** Who served an answer, at what price and fee, the level it is checked at, and its receipt. */
export function AnswerMeta({ info, model }: { info: AnswerInfo; model: ModelObject | undefined }) {
  const provider = info.provider
  const served = provider ? model?.providers.find((p) => p.address.toLowerCase() === provider.toLowerCase()) : undefined
  const fee = info.fee !== null ? format0G(info.fee) : info.cost !== undefined ? `${info.cost} 0G` : '—'
  return (
    <dl class="meta" data-testid="answer-meta">
      <dt>Provider</dt>
      <dd data-testid="meta-provider" title={provider ?? ''}>
        {provider ? shortAddress(provider) : '—'}
        {info.attempts && info.attempts !== '1' && <span class="muted"> ({info.attempts} tried)</span>}
      </dd>
      <dt>Price</dt>
      <dd>{served && model ? priceText(model.service_type, served.input_price, served.output_price) : '—'}</dd>
      <dt>Fee</dt>
      <dd data-testid="meta-fee">{fee}</dd>
      <dt>Verification</dt>
      <dd data-testid="meta-verification">{info.verification ?? '—'}</dd>
      <dt>Receipt</dt>
      <dd>{info.requestId ? <a href={receiptHref(info.requestId)}>{info.requestId}</a> : '—'}</dd>
    </dl>
  )
}
