/** Reads a V8 .cpuprofile (from --cpu-prof or the inspector) and ranks functions by self time. */

type ProfileNode = {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  hitCount?: number
}
export type CpuProfile = {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export type SelfTime = { fn: string; where: string; selfMs: number; percent: number }
export type ProfileSummary = {
  /** Sampled wall time, ms. */
  totalMs: number
  /** Share of the samples the process was busy (neither idle nor waiting). */
  busyPercent: number
  top: SelfTime[]
  /** Self time by package or by our own room (src/gateway, node_modules/viem, node:internal, …). */
  byModule: Array<{ module: string; selfMs: number; percent: number }>
}

function shortUrl(url: string): string {
  if (!url) return ''
  const nm = url.lastIndexOf('/node_modules/')
  if (nm !== -1) return url.slice(nm + '/node_modules/'.length)
  const src = url.indexOf('/src/')
  if (src !== -1) return url.slice(src + 1)
  const bench = url.indexOf('/bench/')
  if (bench !== -1) return url.slice(bench + 1)
  return url.replace(/^file:\/\//, '')
}

function moduleOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)'
  const short = shortUrl(url)
  if (short.startsWith('node:')) return 'node:internal'
  if (url.includes('/node_modules/')) {
    const parts = short.split('/')
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
  }
  if (short.startsWith('src/')) return short.split('/').slice(0, 2).join('/')
  return short.split('/')[0] ?? short
}

export function summarizeProfile(profile: CpuProfile, topN = 20): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  if (samples.length) {
    // Each sample's time is the delta to the next sample (the last one gets the mean).
    const mean = (profile.endTime - profile.startTime) / samples.length
    for (let i = 0; i < samples.length; i++) {
      const dt = i + 1 < deltas.length ? deltas[i + 1]! : mean
      self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + dt)
    }
  } else {
    const total = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1
    const perHit = (profile.endTime - profile.startTime) / total
    for (const n of profile.nodes) self.set(n.id, (n.hitCount ?? 0) * perHit)
  }
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0) || 1
  const fns = new Map<string, SelfTime>()
  const modules = new Map<string, number>()
  let idleUs = 0
  for (const [id, us] of self) {
    const { callFrame } = byId.get(id)!
    const fn = callFrame.functionName || '(anonymous)'
    if (fn === '(idle)') idleUs += us
    const where = callFrame.url ? `${shortUrl(callFrame.url)}:${callFrame.lineNumber + 1}` : ''
    const key = `${fn}\u0000${where}`
    const entry = fns.get(key) ?? { fn, where, selfMs: 0, percent: 0 }
    entry.selfMs += us / 1000
    fns.set(key, entry)
    const mod = moduleOf(callFrame.url, fn)
    modules.set(mod, (modules.get(mod) ?? 0) + us)
  }
  const pct = (us: number) => Number(((100 * us) / totalUs).toFixed(1))
  const top = [...fns.values()]
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, topN)
    .map((e) => ({ ...e, selfMs: Number(e.selfMs.toFixed(1)), percent: pct(e.selfMs * 1000) }))
  const byModule = [...modules.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([module, us]) => ({ module, selfMs: Number((us / 1000).toFixed(1)), percent: pct(us) }))
  return {
    totalMs: Number((totalUs / 1000).toFixed(1)),
    busyPercent: Number((100 - (100 * idleUs) / totalUs).toFixed(1)),
    top,
    byModule,
  }
}
