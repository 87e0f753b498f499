import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DCAP = join(ROOT, 'test/fixtures/tee-vectors/intel-dcap')
const expected = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/tee-vectors/expected.json'), 'utf8'))
const tdx = expected['intel-dcap/tdx_quote.bin']
const sgx = expected['intel-dcap/sgx_quote.bin']
const dir = mkdtempSync(join(tmpdir(), 'zg-attest-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The real CLI process, as a user runs it. */
async function cli(args: string[]) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['bin/zg-gateway.js', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '' },
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

const verifyTdx = (...extra: string[]) =>
  cli([
    'attest',
    'verify-quote',
    join(DCAP, 'tdx_quote.bin'),
    '--collateral',
    join(DCAP, 'tdx_quote_collateral.json'),
    ...extra,
  ])

describe('zg-gateway attest verify-quote', () => {
  it('prints the verdict, TCB policy and measurements of a good quote; exit 0', async () => {
    const r = await verifyTdx('--now', tdx.now)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/quote\s+verified \(v4, td10\)/)
    expect(r.stdout).toMatch(/tcb status\s+UpToDate/)
    expect(r.stdout).toMatch(/policy\s+accepted: TCB UpToDate/)
    expect(r.stdout).toContain(`0x${tdx.report_data_hex}`)
    expect(r.stdout).toMatch(new RegExp(`mr_td\\s+0x${tdx.mr_td_hex}`))
    expect(r.stdout).toMatch(/rtmr3\s+0x0{96}/)
  })

  it('reads a hex quote file and --now in unix seconds; --json', async () => {
    const hexFile = join(dir, 'quote.hex')
    writeFileSync(hexFile, `${readFileSync(join(DCAP, 'tdx_quote.bin')).toString('hex')}\n`)
    const seconds = String(Date.parse(tdx.now) / 1000)
    const r = await cli([
      'attest',
      'verify-quote',
      hexFile,
      '--collateral',
      join(DCAP, 'tdx_quote_collateral.json'),
      '--now',
      seconds,
      '--json',
    ])
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ ok: true, status: 'UpToDate', quoteVersion: 4, reportData: `0x${tdx.report_data_hex}` })
    expect(out.td.mrTd).toBe(`0x${tdx.mr_td_hex}`)
  })

  it('exit 1 with the reason on expired collateral and on a CRL past its nextUpdate', async () => {
    const [expired, crl, lib] = await Promise.all([
      verifyTdx('--now', '2025-08-01T00:00:00Z'),
      verifyTdx('--now', '2025-07-19T10:10:00Z', '--json'),
      verifyTdx('--now', '2025-07-19T10:10:00Z', '--skip-crl-dates'),
    ])
    expect(expired.code).toBe(1)
    expect(expired.stdout).toContain('quote rejected (quote): TCBInfo expired')
    expect(crl.code).toBe(1)
    expect(JSON.parse(crl.stdout).error).toMatchObject({ stage: 'crl', message: expect.stringMatching(/^CRL expired/) })
    expect(lib.code).toBe(0)
    expect(lib.stdout).toMatch(/crl dates\s+NOT checked/)
  })

  it('applies the TCB policy: SGX ConfigurationAndSWHardeningNeeded fails unless its advisories are allowed', async () => {
    const args = [
      'attest',
      'verify-quote',
      join(DCAP, 'sgx_quote.bin'),
      '--collateral',
      join(DCAP, 'sgx_quote_collateral.json'),
      '--now',
      sgx.now,
    ]
    const [strict, allowed] = await Promise.all([
      cli(args),
      cli([...args, '--allow-advisories', sgx.advisory_ids.join(',')]),
    ])
    expect(strict.code).toBe(1)
    expect(strict.stdout).toMatch(/policy\s+rejected: TCB ConfigurationAndSWHardeningNeeded rejected/)
    expect(allowed.code).toBe(0)
    expect(allowed.stdout).toContain('INTEL-SA-00289, INTEL-SA-00615')
  })

  it('checks report_data against --signer; usage errors exit 2', async () => {
    const [r, usage] = await Promise.all([
      verifyTdx('--now', tdx.now, '--signer', '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266'),
      cli(['attest', 'verify-quote', join(DCAP, 'tdx_quote.bin')]),
    ])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/binding\s+FAILED: report_data does not bind/)
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('--collateral is required')
  })
})
