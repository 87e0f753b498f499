import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP, isIPv4, isIPv6 } from 'node:net'

/**
 * A provider URL read from the chain was refused. Anyone can register a service with any URL, so the URL is
 * untrusted input: without this check the gateway could be pointed at its own loopback services, the private
 * network it runs in, or a cloud metadata endpoint (SSRF).
 */
export class UnsafeProviderUrlError extends Error {
  override name = 'UnsafeProviderUrlError'
  readonly url: string
  readonly reason: string

  constructor(url: string, reason: string) {
    super(`unsafe provider URL ${JSON.stringify(truncate(url, 200))}: ${reason}`)
    this.url = url
    this.reason = reason
  }
}

export type CheckProviderUrlOptions = {
  /** Accept loopback and private addresses (the devnet's providers live on 127.0.0.1). */
  allowPrivate: boolean
  /** Resolves a host name to all its addresses; default node:dns lookup (the OS resolver, like the HTTP client). */
  resolve?: (hostname: string) => Promise<string[]>
}

/** On-chain strings are unbounded; no sane provider URL is longer. */
const MAX_URL_LENGTH = 2048
/** getaddrinfo has no timeout of its own; a refresh must not hang on one provider's DNS. */
const DNS_TIMEOUT_MS = 5_000

/**
 * Parses and vets a provider URL: http or https only, no credentials, and (unless `allowPrivate`) a host whose
 * every address is public. Literal IPs are judged without DNS. Resolves to the parsed URL; throws
 * UnsafeProviderUrlError with the reason otherwise.
 *
 * This is a check at discovery time. DNS can change between this check and a connection (rebinding), so HTTP
 * clients that talk to providers should also connect through `guardedLookup`.
 */
export async function checkProviderUrl(url: string, opts: CheckProviderUrlOptions): Promise<URL> {
  if (typeof url !== 'string' || url.length === 0) throw new UnsafeProviderUrlError(String(url), 'the URL is empty')
  if (url.length > MAX_URL_LENGTH) {
    throw new UnsafeProviderUrlError(url, `the URL is longer than ${MAX_URL_LENGTH} characters`)
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new UnsafeProviderUrlError(url, 'not a valid absolute URL')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UnsafeProviderUrlError(url, `scheme ${parsed.protocol.slice(0, -1)} is not allowed (only http and https)`)
  }
  if (parsed.username || parsed.password) {
    throw new UnsafeProviderUrlError(url, 'credentials in the URL are not allowed')
  }
  // WHATWG URL has already normalised the host: numeric IPv4 forms (2130706433, 0x7f.1) become dotted quads and
  // IPv6 is canonical and bracketed, so the literal check below cannot be dodged by spelling.
  const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname
  if (!host) throw new UnsafeProviderUrlError(url, 'the URL has no host')
  if (opts.allowPrivate) return parsed

  if (isIP(host)) {
    const range = nonPublicRange(host)
    if (range) throw new UnsafeProviderUrlError(url, `${host} is ${range}`)
    return parsed
  }

  let addresses: string[]
  try {
    addresses = await withTimeout((opts.resolve ?? resolveAll)(host), DNS_TIMEOUT_MS, `DNS lookup of ${host}`)
  } catch (err) {
    throw new UnsafeProviderUrlError(url, `could not resolve ${host}: ${(err as Error).message}`)
  }
  if (addresses.length === 0) throw new UnsafeProviderUrlError(url, `${host} resolves to no address`)
  for (const address of addresses) {
    const range = isIP(address) ? nonPublicRange(address) : 'not an IP address'
    if (range) throw new UnsafeProviderUrlError(url, `${host} resolves to ${address}, which is ${range}`)
  }
  return parsed
}

/**
 * True when `ip` is not a public unicast address: loopback, private (RFC 1918), CGNAT, unique local, link-local
 * (including cloud metadata), unspecified, multicast, reserved or documentation ranges, and IPv6 forms that embed
 * such an IPv4 address (mapped, compatible, NAT64, 6to4). Throws TypeError when `ip` is not an IP address.
 */
export function isPrivateAddress(ip: string): boolean {
  if (!isIP(stripZone(ip))) throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`)
  return nonPublicRange(ip) !== undefined
}

/** The name of the non-public range `ip` falls in, or undefined when it is a public unicast address. */
export function nonPublicRange(ip: string): string | undefined {
  const bare = stripZone(ip)
  if (isIPv4(bare)) return ipv4Range(parseIPv4(bare))
  if (isIPv6(bare)) return ipv6Range(parseIPv6(bare))
  return 'not an IP address'
}

/**
 * A `lookup` for net.connect / tls.connect (undici: `new Agent({ connect: { lookup: guardedLookup } })`) that
 * refuses to connect when the host resolves to a non-public address. It closes the DNS-rebinding gap left by
 * checking URLs only at discovery time. IP literals never reach a lookup, so vet them with checkProviderUrl first.
 */
export function guardedLookup(
  hostname: string,
  options: { all?: boolean; family?: number | string; hints?: number },
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
): void {
  dnsLookup(hostname, { ...options, all: true } as { all: true }, (err, addresses) => {
    if (err) return callback(err, options.all ? [] : '')
    const bad = addresses.find((a) => nonPublicRange(a.address) !== undefined)
    if (bad) {
      const refused: NodeJS.ErrnoException = new UnsafeProviderUrlError(
        hostname,
        `${hostname} resolves to ${bad.address}, which is ${nonPublicRange(bad.address)}`,
      )
      refused.code = 'EUNSAFEADDRESS'
      return callback(refused, options.all ? [] : '')
    }
    if (options.all) return callback(null, addresses)
    const first = addresses[0]
    if (!first)
      return callback(Object.assign(new Error(`${hostname} resolves to no address`), { code: 'ENOTFOUND' }), '')
    callback(null, first.address, first.family)
  })
}

function resolveAll(hostname: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    // verbatim: keep every address the resolver returned; all: a single private one is enough to refuse.
    dnsLookup(hostname, { all: true, order: 'verbatim' }, (err, addresses) => {
      if (err) reject(err)
      else resolve(addresses.map((a) => a.address))
    })
  })
}

function ipv4Range(bytes: readonly number[]): string | undefined {
  const [a = 0, b = 0, c = 0, d = 0] = bytes
  if (a === 0) return 'unspecified ("this network", 0.0.0.0/8)'
  if (a === 10) return 'private (10.0.0.0/8)'
  if (a === 100 && b >= 64 && b <= 127) return 'shared address space (CGNAT, 100.64.0.0/10)'
  if (a === 127) return 'loopback (127.0.0.0/8)'
  if (a === 169 && b === 254) {
    return c === 169 && d === 254
      ? 'link-local (169.254.0.0/16): the cloud metadata endpoint'
      : 'link-local (169.254.0.0/16)'
  }
  if (a === 172 && b >= 16 && b <= 31) return 'private (172.16.0.0/12)'
  if (a === 192 && b === 0 && c === 0) return 'reserved for IETF protocol assignments (192.0.0.0/24)'
  if (a === 192 && b === 0 && c === 2) return 'reserved for documentation (192.0.2.0/24)'
  if (a === 192 && b === 168) return 'private (192.168.0.0/16)'
  if (a === 198 && (b === 18 || b === 19)) return 'reserved for benchmarking (198.18.0.0/15)'
  if (a === 198 && b === 51 && c === 100) return 'reserved for documentation (198.51.100.0/24)'
  if (a === 203 && b === 0 && c === 113) return 'reserved for documentation (203.0.113.0/24)'
  if (a >= 224 && a <= 239) return 'multicast (224.0.0.0/4)'
  if (a >= 240) return a === 255 && b === 255 && c === 255 && d === 255 ? 'broadcast' : 'reserved (240.0.0.0/4)'
  return undefined
}

function ipv6Range(b: readonly number[]): string | undefined {
  const zeroUpTo = (n: number) => b.slice(0, n).every((x) => x === 0)
  const v4At = (i: number) => b.slice(i, i + 4)
  if (zeroUpTo(16)) return 'unspecified (::)'
  if (zeroUpTo(15) && b[15] === 1) return 'loopback (::1)'
  if (zeroUpTo(10) && b[10] === 0xff && b[11] === 0xff) {
    const inner = ipv4Range(v4At(12))
    return inner ? `IPv4-mapped ${inner}` : undefined
  }
  // ::a.b.c.d, deprecated since RFC 4291 and never globally routed; some stacks still deliver it to IPv4.
  if (zeroUpTo(12)) return 'IPv4-compatible (deprecated, ::/96)'
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) {
    if (b.slice(4, 12).every((x) => x === 0)) {
      const inner = ipv4Range(v4At(12))
      return inner ? `NAT64 (64:ff9b::/96) of ${inner}` : undefined
    }
    if (b[4] === 0x00 && b[5] === 0x01) return 'local-use NAT64 (64:ff9b:1::/48)'
  }
  if (b[0] === 0x01 && b[1] === 0x00 && b.slice(2, 8).every((x) => x === 0)) return 'discard-only (100::/64)'
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x0d && b[3] === 0xb8)
    return 'reserved for documentation (2001:db8::/32)'
  if (b[0] === 0x20 && b[1] === 0x02) {
    const inner = ipv4Range(v4At(2))
    return inner ? `6to4 (2002::/16) of ${inner}` : undefined
  }
  const first = b[0] ?? 0
  const second = b[1] ?? 0
  if ((first & 0xfe) === 0xfc) return 'unique local (fc00::/7)'
  if (first === 0xfe && (second & 0xc0) === 0x80) return 'link-local (fe80::/10)'
  if (first === 0xfe && (second & 0xc0) === 0xc0) return 'site-local (deprecated, fec0::/10)'
  if (first === 0xff) return 'multicast (ff00::/8)'
  return undefined
}

function stripZone(ip: string): string {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip
  const zone = bare.indexOf('%')
  return zone >= 0 ? bare.slice(0, zone) : bare
}

/** Dotted quad to 4 bytes; the caller has checked isIPv4. */
function parseIPv4(ip: string): number[] {
  return ip.split('.').map(Number)
}

/** Any valid IPv6 text (with ::, an embedded dotted quad) to 16 bytes; the caller has checked isIPv6. */
function parseIPv6(ip: string): number[] {
  const groupsOf = (part: string): number[] => {
    if (!part) return []
    const out: number[] = []
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a = 0, b = 0, c = 0, d = 0] = parseIPv4(g)
        out.push((a << 8) | b, (c << 8) | d)
      } else {
        out.push(Number.parseInt(g, 16))
      }
    }
    return out
  }
  const gap = ip.indexOf('::')
  let groups: number[]
  if (gap >= 0) {
    const head = groupsOf(ip.slice(0, gap))
    const tail = groupsOf(ip.slice(gap + 2))
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
  } else {
    groups = groupsOf(ip)
  }
  return groups.flatMap((g) => [g >> 8, g & 0xff])
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s
}
