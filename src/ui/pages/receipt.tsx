import { useEffect, useMemo, useState } from 'preact/hooks'
import { getJson } from '../api.ts'
import { ErrorBox } from '../components/error-box.tsx'
import { format0G, formatTime, shortAddress } from '../format.ts'
import { useKeys } from '../session.ts'
import type { Receipt as ReceiptJson } from '../types.ts'
import { useLoad } from '../use-load.ts'

const POLL_MS = 1000
const POLLS = 15

/**
 * A call's receipt: with the admin key any call's (/admin/receipts), else the API key's own (/v1/receipts). The
 * gateway signs it once its check, off the hot path, is done: until then the page asks again every second.
 */
export function Receipt({ id }: { id: string }) {
  const keys = useKeys()
  const [polls, setPolls] = useState(0)
  const path = keys.adminKey ? `/admin/receipts/${id}` : `/v1/receipts/${id}`
  const receipt = useLoad(() => getJson<ReceiptJson>(path, keys.adminKey ? 'admin' : 'api'), [path, polls])
  const data = receipt.data
  const pending = !!data && !data.signed && polls < POLLS
  useEffect(() => {
    if (!pending) return
    const timer = setTimeout(() => setPolls((n) => n + 1), POLL_MS)
    return () => clearTimeout(timer)
  }, [pending, polls])
  const download = useMemo(
    () =>
      data ? URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' })) : undefined,
    [data],
  )
  useEffect(() => () => download && URL.revokeObjectURL(download), [download])
  return (
    <>
      <h2>Receipt</h2>
      <p>
        <code>{id}</code>
      </p>
      <ErrorBox error={receipt.error} />
      {data && (
        <>
          <dl class="meta" data-testid="receipt">
            <dt>Model</dt>
            <dd>
              {data.model} <span class="muted">({data.endpoint})</span>
            </dd>
            <dt>Provider</dt>
            <dd title={data.provider}>{shortAddress(data.provider)}</dd>
            <dt>When</dt>
            <dd>{formatTime(data.created * 1000)}</dd>
            <dt>Fee</dt>
            <dd>{format0G(data.fee)}</dd>
            <dt>Usage</dt>
            <dd>
              {data.usage.input} in, {data.usage.output} out; {data.delivered_bytes} bytes delivered
            </dd>
            <dt>Verification</dt>
            <dd data-testid="receipt-verification">
              {data.verification.status}
              {data.verification.level && ` at ${data.verification.level}`}
              {data.verification.detail && <span class="muted"> ({data.verification.detail})</span>}
            </dd>
          </dl>
          {data.signed ? (
            <section class="card" data-testid="signed-receipt">
              <h3>Signed receipt</h3>
              <p>
                Signed by the gateway <code>{data.signed.gateway}</code>. Check it offline:{' '}
                <a href={download} download={`${data.id}.json`}>
                  download receipt.json
                </a>
                , then
              </p>
              <pre>
                npx zg-gateway attest verify-receipt {data.id}.json --gateway {data.signed.gateway}
              </pre>
              <details>
                <summary>Payload and signature</summary>
                <pre>{JSON.stringify(JSON.parse(data.signed.payload), null, 2)}</pre>
                <pre class="wrap">{data.signed.signature}</pre>
              </details>
            </section>
          ) : (
            <p class="muted">
              {pending ? 'Not signed yet: the check runs after the answer…' : 'No signed receipt (yet).'}{' '}
              <button type="button" class="secondary" onClick={() => (polls ? setPolls(0) : receipt.reload())}>
                Check again
              </button>
            </p>
          )}
        </>
      )}
    </>
  )
}
