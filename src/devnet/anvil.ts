import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { createTestClient, type Hex, http, type PrivateKeyAccount, publicActions, toHex } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { privateKeyAccount } from '../chain/secp256k1.ts'

/** A running anvil child process. */
export type Anvil = {
  rpcUrl: string
  port: number
  chainId: number
  /** SIGTERM, then waits for the exit, so that a --state file is dumped before this resolves. */
  stop(): Promise<void>
}

export type StartAnvilOptions = {
  /** 0 (the default) lets the OS pick a free port. */
  port?: number
  /** Default 31337. */
  chainId?: number
  /** anvil --state <file>: loads the chain from it if present, dumps into it on exit. */
  stateFile?: string
  /**
   * anvil --state-interval <seconds>: also dumps the state periodically, so a crash loses at most this much.
   * Only meaningful with stateFile.
   */
  stateInterval?: number
  /** Seconds per block (interval mining); default: a block per transaction. */
  blockTime?: number
  /** Number of dev accounts (default 10). */
  accounts?: number
  /** 0G per dev account, default 1_000_000. */
  balance?: number
}

/** anvil's default mnemonic: its dev accounts are derived from it at m/44'/60'/0'/0/i. */
export const DEV_MNEMONIC = 'test test test test test test test test test test test junk'

/**
 * The private keys of anvil's first 10 dev accounts (public, well known: never use them outside a local chain).
 * Spelled out rather than derived at import, because each derivation costs ~10 ms of PBKDF2; anvil.test.ts checks
 * that they equal the derivation from DEV_MNEMONIC.
 */
export const DEV_MNEMONIC_KEYS: readonly Hex[] = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
  '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e',
  '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
  '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97',
  '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6',
]

const accountCache = new Map<number, PrivateKeyAccount>()

/**
 * anvil dev account i (funded on every anvil started with the default mnemonic). Built from the private key rather
 * than returned from mnemonicToAccount, whose HDAccount type is not a PrivateKeyAccount (optional signAuthorization).
 */
export function anvilAccount(i: number): PrivateKeyAccount {
  let account = accountCache.get(i)
  if (!account) {
    account = privateKeyAccount(anvilPrivateKey(i))
    accountCache.set(i, account)
  }
  return account
}

/** The hex private key of anvil dev account i: m/44'/60'/0'/0/i of DEV_MNEMONIC. */
export function anvilPrivateKey(i: number): Hex {
  if (!Number.isInteger(i) || i < 0) throw new RangeError(`anvil account index must be a non-negative integer: ${i}`)
  const known = DEV_MNEMONIC_KEYS[i]
  if (known) return known
  const key = mnemonicToAccount(DEV_MNEMONIC, { addressIndex: i }).getHdKey().privateKey
  if (!key) throw new Error(`could not derive the private key of anvil account ${i}`)
  return toHex(key)
}

let binaryPath: string | undefined

/**
 * The anvil executable shipped by @foundry-rs/anvil: its per-platform optional dependency
 * (@foundry-rs/anvil-<platform>-<arch>/bin/anvil[.exe]), resolved from the wrapper package so it also works with
 * non-hoisted layouts. We spawn the binary itself rather than the wrapper's bin.mjs so that our SIGTERM reaches
 * anvil directly and there is no extra Node process.
 */
export function anvilBinary(): string {
  if (binaryPath) return binaryPath
  const require = createRequire(import.meta.url)
  const wrapperPkg = require.resolve('@foundry-rs/anvil/package.json')
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as string]
  const exe = process.platform === 'win32' ? 'anvil.exe' : 'anvil'
  const candidates: string[] = []
  if (arch) {
    try {
      candidates.push(createRequire(wrapperPkg).resolve(`@foundry-rs/anvil-${process.platform}-${arch}/bin/${exe}`))
    } catch {
      // not installed for this platform; fall through to the wrapper's dist/ fallback (same as its bin.mjs)
    }
  }
  candidates.push(join(dirname(wrapperPkg), '..', 'dist', exe))
  const found = candidates.find((p) => existsSync(p))
  if (!found) {
    throw new Error(
      `No anvil binary for ${process.platform}-${process.arch} in @foundry-rs/anvil (looked at ${candidates.join(', ')}). ` +
        'Reinstall with npm ci (optional dependencies must not be omitted).',
    )
  }
  binaryPath = found
  return found
}

const READY_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 15_000
const TAIL_LINES = 20

/** Starts anvil on 127.0.0.1 and resolves once it listens. */
export async function startAnvil(opts: StartAnvilOptions = {}): Promise<Anvil> {
  const chainId = opts.chainId ?? 31337
  const requestedPort = opts.port ?? 0
  const args = [
    '--host',
    '127.0.0.1',
    '--port',
    String(requestedPort),
    '--chain-id',
    String(chainId),
    '--balance',
    String(opts.balance ?? 1_000_000),
  ]
  if (opts.accounts !== undefined) args.push('--accounts', String(opts.accounts))
  if (opts.blockTime !== undefined) args.push('--block-time', String(opts.blockTime))
  if (opts.stateFile !== undefined) args.push('--state', opts.stateFile)
  if (opts.stateFile !== undefined && opts.stateInterval !== undefined) {
    args.push('--state-interval', String(opts.stateInterval))
  }

  const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const tail: string[] = []
  const remember = (line: string) => {
    tail.push(line)
    if (tail.length > TAIL_LINES) tail.shift()
  }
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  // If this process exits without calling stop(), do not leave anvil holding the port. A synchronous SIGTERM is
  // all an 'exit' handler can do; anvil still dumps its state as it shuts down.
  const killOnExit = () => child.kill('SIGTERM')
  process.once('exit', killOnExit)
  exited.then(() => process.off('exit', killOnExit))

  let port: number
  try {
    port = await waitForListening(child, remember, tail)
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    const text = (err as Error).message
    if (/address already in use|os error 98|os error 48|os error 10048/i.test(text)) {
      throw new Error(`anvil could not listen on 127.0.0.1:${requestedPort}: the port is already in use`, {
        cause: err,
      })
    }
    throw err
  }

  const rpcUrl = `http://127.0.0.1:${port}`
  let stopping: Promise<void> | undefined
  const anvil: Anvil = {
    rpcUrl,
    port,
    chainId,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return
        child.kill('SIGTERM')
        // A hung anvil must not hang our shutdown; the state may then be lost, which is why the devnet also dumps
        // on an interval.
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
        await exited
        clearTimeout(timer)
      })()
      return stopping
    },
  }

  if (opts.stateFile !== undefined) {
    try {
      await keepTimeMonotonic(rpcUrl)
    } catch (err) {
      await anvil.stop()
      throw err
    }
  }
  return anvil
}

/**
 * Resolves with the port from anvil's "Listening on 127.0.0.1:PORT" line, rejects if it exits first. stdout and
 * stderr keep being drained afterwards (anvil logs every RPC call; a full pipe would block it).
 */
function waitForListening(child: ChildProcess, remember: (line: string) => void, tail: string[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let settled = false
    const settle = (fn: () => void) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      fn()
    }
    const timer = setTimeout(
      () =>
        settle(() => reject(new Error(`anvil did not start listening within ${READY_TIMEOUT_MS} ms${tailText(tail)}`))),
      READY_TIMEOUT_MS,
    )
    const onLines = (stream: NodeJS.ReadableStream, check: boolean) => {
      let buffer = ''
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => {
        buffer += chunk
        let nl = buffer.indexOf('\n')
        while (nl >= 0) {
          const line = buffer.slice(0, nl).trimEnd()
          buffer = buffer.slice(nl + 1)
          if (line) remember(line)
          const m = check && !settled ? /Listening on 127\.0\.0\.1:(\d+)/.exec(line) : null
          if (m) settle(() => resolve(Number(m[1])))
          nl = buffer.indexOf('\n')
        }
      })
    }
    onLines(child.stdout!, true)
    onLines(child.stderr!, false)
    child.once('error', (err) =>
      settle(() => reject(new Error(`could not start anvil: ${err.message}`, { cause: err }))),
    )
    child.once('close', (code, signal) =>
      settle(() =>
        reject(new Error(`anvil exited (${signal ?? `code ${code}`}) before it was listening${tailText(tail)}`)),
      ),
    )
  })
}

function tailText(tail: string[]): string {
  return tail.length ? `:\n${tail.join('\n')}` : ''
}

/**
 * anvil --state restores the blocks but not the evm_increaseTime offset, so after a restart new blocks would be
 * stamped with the wall clock, i.e. earlier than the last block if a test had moved time forward. Contracts that
 * compare against stored timestamps (refund locks) would then misbehave; carry the offset over instead.
 */
async function keepTimeMonotonic(rpcUrl: string): Promise<void> {
  const client = testClient(rpcUrl)
  const latest = await client.getBlock({ blockTag: 'latest' })
  const ahead = Number(latest.timestamp) - Math.floor(Date.now() / 1000)
  if (ahead > 0) await client.increaseTime({ seconds: ahead + 1 })
}

function testClient(rpcUrl: string) {
  return createTestClient({ mode: 'anvil', transport: http(rpcUrl, { retryCount: 0 }) }).extend(publicActions)
}

/** Moves the chain clock forward and mines a block, so the new time is visible to the next call (tests only). */
export async function increaseTime(rpcUrl: string, seconds: number | bigint): Promise<void> {
  const client = testClient(rpcUrl)
  await client.increaseTime({ seconds: Number(seconds) })
  await client.mine({ blocks: 1 })
}
