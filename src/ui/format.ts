/** Amounts arrive as neuron (1 0G = 10^18 neuron) in decimal text; they are turned into 0G only here, exactly. */
const NEURON_PER_0G = 10n ** 18n

/** Neuron as exact 0G text ("0.0000765 0G"); "—" for an unknown amount. */
export function format0G(neuron: string | bigint | null | undefined): string {
  if (neuron === null || neuron === undefined || neuron === '') return '—'
  const n = BigInt(neuron)
  const abs = n < 0n ? -n : n
  const fraction = (abs % NEURON_PER_0G).toString().padStart(18, '0').replace(/0+$/, '')
  return `${n < 0n ? '-' : ''}${abs / NEURON_PER_0G}${fraction ? `.${fraction}` : ''} 0G`
}

/** What a provider charges, in the unit its kind of service is billed in (0G rule: per token, image or second). */
export function priceText(serviceType: string, inputPrice: string, outputPrice: string): string {
  switch (serviceType) {
    case 'text-to-image':
    case 'image-editing':
      return `${format0G(outputPrice)} per image`
    case 'audio-generation':
      return `${format0G(outputPrice)} per second of audio`
    case 'speech-to-text':
      return `${format0G(inputPrice)} per second of audio`
    default:
      return `in ${format0G(BigInt(inputPrice) * 1_000_000n)}, out ${format0G(BigInt(outputPrice) * 1_000_000n)} per 1M tokens`
  }
}

/** 0x1234…abcd: enough to tell providers apart; the whole address goes in a title. */
export function shortAddress(address: string): string {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address
}

export function formatMs(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '—' : `${Math.round(ms)} ms`
}

export function formatRate(bytesPerSecond: number | null | undefined): string {
  if (bytesPerSecond === null || bytesPerSecond === undefined) return '—'
  return bytesPerSecond >= 1e6
    ? `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`
    : `${Math.round(bytesPerSecond / 1e3)} kB/s`
}

export function formatTime(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString()
}
