import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent, request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  checkProviderUrl,
  guardedLookup,
  isPrivateAddress,
  nonPublicRange,
  UnsafeProviderUrlError,
} from './url-safety.ts'

const strict = { allowPrivate: false }
const resolveTo =
  (...addresses: string[]) =>
  async () =>
    addresses

async function refusal(url: string, opts: Parameters<typeof checkProviderUrl>[1] = strict): Promise<string> {
  const err = await checkProviderUrl(url, opts).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, `${url} should be refused`).toBeInstanceOf(UnsafeProviderUrlError)
  return (err as UnsafeProviderUrlError).reason
}

describe('isPrivateAddress', () => {
  it.each([
    ['127.0.0.1', /loopback/],
    ['127.255.255.254', /loopback/],
    ['10.0.0.1', /private \(10/],
    ['10.255.255.255', /private/],
    ['172.16.0.1', /private \(172\.16/],
    ['172.31.255.255', /private/],
    ['192.168.1.1', /private \(192\.168/],
    ['100.64.0.1', /CGNAT/],
    ['100.127.255.255', /CGNAT/],
    ['100.100.100.200', /CGNAT/], // Alibaba Cloud metadata
    ['169.254.169.254', /metadata/],
    ['169.254.1.1', /link-local/],
    ['0.0.0.0', /unspecified/],
    ['0.1.2.3', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['240.0.0.1', /reserved/],
    ['255.255.255.255', /broadcast/],
    ['192.0.0.170', /IETF/],
    ['192.0.2.1', /documentation/],
    ['198.18.0.1', /benchmarking/],
    ['::', /unspecified/],
    ['::1', /loopback/],
    ['fc00::1', /unique local/],
    ['fd12:3456::1', /unique local/],
    ['fd00:ec2::254', /unique local/], // AWS IPv6 metadata
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['febf::1', /link-local/],
    ['fec0::1', /site-local/],
    ['ff02::1', /multicast/],
    ['::ffff:127.0.0.1', /IPv4-mapped loopback/],
    ['::ffff:7f00:1', /IPv4-mapped loopback/],
    ['::ffff:169.254.169.254', /IPv4-mapped link-local.*metadata/],
    ['::ffff:a9fe:a9fe', /IPv4-mapped link-local/],
    ['::ffff:10.1.2.3', /IPv4-mapped private/],
    ['0:0:0:0:0:ffff:c0a8:0101', /IPv4-mapped private/],
    ['::127.0.0.1', /IPv4-compatible/],
    ['64:ff9b::7f00:1', /NAT64.*loopback/],
    ['64:ff9b:1::1', /local-use NAT64/],
    ['2002:7f00:1::1', /6to4.*loopback/],
    ['2002:c0a8:101::', /6to4.*private/],
    ['100::1', /discard/],
    ['2001:db8::1', /documentation/],
    ['[::1]', /loopback/],
  ])('%s is not public', (ip, range) => {
    expect(isPrivateAddress(ip)).toBe(true)
    expect(nonPublicRange(ip)).toMatch(range)
  })

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '93.184.215.14',
    '172.15.255.255',
    '172.32.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '169.253.255.255',
    '192.169.0.1',
    '11.0.0.1',
    '223.255.255.255',
    '2606:4700:4700::1111',
    '2001:4860:4860::8888',
    '::ffff:8.8.8.8',
    '::ffff:808:808',
    '64:ff9b::808:808',
    '2002:808:808::1',
    'fbff::1',
    'fe7f::1',
  ])('%s is public', (ip) => {
    expect(isPrivateAddress(ip)).toBe(false)
    expect(nonPublicRange(ip)).toBeUndefined()
  })

  it('throws on a string that is not an IP address', () => {
    for (const bad of ['example.com', '', '127.1', '1.2.3.4.5', '::g', '256.0.0.1']) {
      expect(() => isPrivateAddress(bad), bad).toThrow(TypeError)
    }
  })
})

describe('checkProviderUrl', () => {
  it('accepts public http and https URLs and returns them parsed', async () => {
    const u = await checkProviderUrl('https://8.8.8.8:8443/base/', strict)
    expect(u).toBeInstanceOf(URL)
    expect(u.href).toBe('https://8.8.8.8:8443/base/')
    const v = await checkProviderUrl('http://[2606:4700:4700::1111]/', strict)
    expect(v.hostname).toBe('[2606:4700:4700::1111]')
  })

  it('only allows http and https', async () => {
    for (const url of [
      'ftp://8.8.8.8/',
      'file:///etc/passwd',
      'gopher://8.8.8.8/',
      'javascript:alert(1)',
      'ws://8.8.8.8/',
    ]) {
      expect(await refusal(url)).toMatch(/only http and https/)
      expect(await refusal(url, { allowPrivate: true })).toMatch(/only http and https/)
    }
  })

  it('refuses credentials in the URL, even when private addresses are allowed', async () => {
    expect(await refusal('http://user:secret@8.8.8.8/')).toMatch(/credentials/)
    expect(await refusal('http://user@8.8.8.8/')).toMatch(/credentials/)
    expect(await refusal('http://:pw@127.0.0.1/', { allowPrivate: true })).toMatch(/credentials/)
  })

  it('refuses what is not a URL', async () => {
    expect(await refusal('')).toMatch(/empty/)
    expect(await refusal('not a url')).toMatch(/not a valid/)
    expect(await refusal('/v1/proxy')).toMatch(/not a valid/)
    expect(await refusal(`https://8.8.8.8/${'a'.repeat(3000)}`)).toMatch(/longer than/)
  })

  it('refuses literal non-public IPs without DNS, however they are spelled', async () => {
    const noDns = async (): Promise<string[]> => {
      throw new Error('DNS must not be used for a literal')
    }
    const cases: Array<[string, RegExp]> = [
      ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is link-local.*metadata/],
      ['http://127.0.0.1:8080', /loopback/],
      ['http://2130706433/', /127\.0\.0\.1 is loopback/], // decimal
      ['http://0x7f.1/', /loopback/], // hex, short form
      ['http://017700000001/', /loopback/], // octal
      ['http://0.0.0.0:80/', /unspecified/],
      ['http://10.1.2.3/', /private/],
      ['https://192.168.0.10/', /private/],
      ['http://100.64.1.1/', /CGNAT/],
      ['http://[::1]:8080/', /loopback/],
      ['http://[::]/', /unspecified/],
      ['http://[::ffff:127.0.0.1]/', /IPv4-mapped loopback/],
      ['http://[::ffff:169.254.169.254]/', /IPv4-mapped link-local/],
      ['http://[fd00:ec2::254]/', /unique local/],
      ['http://[fe80::1]/', /link-local/],
      ['http://[ff02::1]/', /multicast/],
      ['http://224.0.0.1/', /multicast/],
    ]
    for (const [url, reason] of cases) {
      expect(await refusal(url, { allowPrivate: false, resolve: noDns }), url).toMatch(reason)
    }
  })

  it('resolves host names and refuses when any address is not public', async () => {
    await expect(
      checkProviderUrl('https://provider.test/', { ...strict, resolve: resolveTo('8.8.8.8') }),
    ).resolves.toBeInstanceOf(URL)
    expect(await refusal('https://provider.test/', { ...strict, resolve: resolveTo('8.8.8.8', '10.0.0.5') })).toMatch(
      /provider\.test resolves to 10\.0\.0\.5, which is private/,
    )
    expect(await refusal('https://meta.test/', { ...strict, resolve: resolveTo('169.254.169.254') })).toMatch(
      /metadata/,
    )
    expect(
      await refusal('https://v6.test/', { ...strict, resolve: resolveTo('2606:4700::1', '::ffff:127.0.0.1') }),
    ).toMatch(/IPv4-mapped loopback/)
    expect(await refusal('https://none.test/', { ...strict, resolve: resolveTo() })).toMatch(/no address/)
    const failing = async (): Promise<string[]> => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nx.test'), { code: 'ENOTFOUND' })
    }
    expect(await refusal('https://nx.test/', { ...strict, resolve: failing })).toMatch(
      /could not resolve nx\.test: .*ENOTFOUND/,
    )
  })

  it('resolves with the system resolver by default: localhost is loopback', async () => {
    expect(await refusal('http://localhost:8080/')).toMatch(/localhost resolves to .*loopback/)
  })

  it('allows private and loopback addresses when allowPrivate (the devnet), without DNS', async () => {
    const noDns = async (): Promise<string[]> => {
      throw new Error('DNS must not be used when private addresses are allowed')
    }
    const open = { allowPrivate: true, resolve: noDns }
    expect((await checkProviderUrl('http://127.0.0.1:4001', open)).port).toBe('4001')
    expect((await checkProviderUrl('http://localhost:4001/', open)).hostname).toBe('localhost')
    expect((await checkProviderUrl('http://169.254.169.254/', open)).hostname).toBe('169.254.169.254')
  })

  it('names the URL and the reason in the error message', async () => {
    const err = await checkProviderUrl('http://169.254.169.254/', strict).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UnsafeProviderUrlError)
    expect((err as Error).name).toBe('UnsafeProviderUrlError')
    expect((err as Error).message).toBe(
      'unsafe provider URL "http://169.254.169.254/": 169.254.169.254 is link-local (169.254.0.0/16): the cloud metadata endpoint',
    )
    expect((err as UnsafeProviderUrlError).url).toBe('http://169.254.169.254/')
  })
})

describe('guardedLookup', () => {
  let server: Server
  let port: number

  beforeAll(async () => {
    server = createServer((_req, res) => res.end('ok'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve))
  })

  it('refuses at connect time a host name that resolves to a private address (DNS rebinding)', async () => {
    const agent = new Agent({ connect: { lookup: guardedLookup } })
    try {
      const err = await request(`http://localhost:${port}/`, { dispatcher: agent }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(UnsafeProviderUrlError)
      expect((err as Error).message).toMatch(/localhost resolves to .*loopback/)
    } finally {
      await agent.close()
    }
  })

  it('answers both lookup shapes (all and single) for public addresses', async () => {
    // A literal IP resolves to itself without the network, so the callback shapes can be checked offline.
    const all = await new Promise<unknown>((resolve, reject) =>
      guardedLookup('8.8.8.8', { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
    )
    expect(all).toEqual([{ address: '8.8.8.8', family: 4 }])
    const one = await new Promise<unknown[]>((resolve, reject) =>
      guardedLookup('8.8.8.8', {}, (err, address, family) => (err ? reject(err) : resolve([address, family]))),
    )
    expect(one).toEqual(['8.8.8.8', 4])
    const refused = await new Promise<unknown>((resolve) => guardedLookup('10.0.0.1', {}, (err) => resolve(err)))
    expect((refused as NodeJS.ErrnoException).code).toBe('EUNSAFEADDRESS')
  })
})
