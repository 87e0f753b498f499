import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Dispatcher } from 'undici'
import { type Address, getAddress, isAddress } from 'viem'
import { parseCollateral } from '../attestation/dcap/collateral.ts'
import { INTEL_PCS_URL } from '../attestation/dcap/collateral-source.ts'
import { DEFAULT_TCB_POLICY } from '../attestation/dcap/tcb-policy.ts'
import { loadMeasurementPolicy } from '../attestation/evidence/measurement-policy.ts'
import { providerLevel, type VerificationLevel } from '../attestation/levels.ts'
import {
  type AttestationOutcome,
  type CollateralProvider,
  guardedCollateralSource,
  SignerAttestations,
} from '../attestation/signer-attestation.ts'
import { format0G } from '../chain/units.ts'
import type { ProviderJson } from '../gateway/admin/providers.ts'
import { type CatalogEntry, ProviderCatalog } from '../providers/catalog.ts'
import { createProviderAgent } from '../providers/provider-agent.ts'
import { adminCall, adminKeyOf } from './admin-client.ts'
import { nowOf } from './attest.ts'
import { type Command, type CommandGroup, requireAddress, UsageError, type Values } from './command.ts'
import { clientsFrom, dataDirOf, networkOptions } from './network-options.ts'
import { printJson, table } from './output.ts'

async function loadCatalog(values: Values) {
  const clients = await clientsFrom(values, false)
  const allowPrivate = Boolean(values['allow-private-urls']) || clients.network.name === 'devnet'
  const catalog = new ProviderCatalog({ clients, allowPrivateUrls: allowPrivate, log: () => {} })
  await catalog.refresh()
  return { catalog, allowPrivate }
}

const list: Command = {
  summary:
    'List the acknowledged inference services on the network, with models, prices and health; with --gateway, as a running gateway routes them (circuit, speed, error rate)',
  options: {
    ...networkOptions,
    'allow-private-urls': { type: 'boolean', description: 'keep providers on private addresses' },
    gateway: {
      type: 'string',
      description: "a running gateway's URL: its catalog and router figures (GET /admin/providers), not the chain's",
    },
    'admin-key': { type: 'string', description: "the gateway's admin key (default: ZG_ADMIN_KEY)" },
  },
  async run(values) {
    const gateway = values.gateway as string | undefined
    if (gateway) {
      const body = await adminCall<{ data: ProviderJson[] }>(gateway, adminKeyOf(values), 'GET', '/providers')
      if (values.json) printJson({ providers: body.data })
      else console.log(routedText(body.data))
      return 0
    }
    const { catalog } = await loadCatalog(values)
    const entries = catalog.entries()
    if (values.json) printJson({ providers: entries, excluded: catalog.excluded() })
    else {
      console.log(
        table([
          ['provider', 'type', 'model', 'verifiability', 'input price', 'output price', 'healthy', 'url'],
          ...entries.map((e) => [
            e.provider,
            e.serviceType,
            e.model,
            e.verifiability,
            `${format0G(e.inputPrice)} 0G`,
            `${format0G(e.outputPrice)} 0G`,
            e.healthy ? 'yes' : 'no',
            e.url,
          ]),
        ]),
      )
      for (const x of catalog.excluded()) console.log(`left out ${x.provider}: ${x.reason}`)
    }
    return 0
  },
}

/** The gateway's view: per provider its prices and level, circuit, measured speed and error rate, and headroom. */
export function routedText(providers: readonly ProviderJson[]): string {
  const ms = (v: number | undefined) => (v === undefined ? '-' : `${Math.round(v)} ms`)
  const rate = (v: number | undefined) => (v === undefined ? '-' : `${(v / 1024).toFixed(1)} KiB/s`)
  const circuit = (b: ProviderJson['breaker']) =>
    b.state === 'closed' || b.nextProbeAt === undefined
      ? b.state
      : `${b.state} (probe ${b.nextProbeAt > Date.now() ? `in ${Math.ceil((b.nextProbeAt - Date.now()) / 1000)} s` : 'due'})`
  return table([
    [
      'provider',
      'models',
      'level',
      'input price',
      'output price',
      'circuit',
      'failures',
      'errors',
      'first byte',
      'throughput',
      'headroom',
      'routed',
    ],
    ...providers.map((p) => [
      p.provider,
      p.models.join(','),
      p.level,
      `${format0G(BigInt(p.inputPrice))} 0G`,
      `${format0G(BigInt(p.outputPrice))} 0G`,
      circuit(p.breaker),
      String(p.breaker.failures),
      `${Math.round(p.breaker.errorRate * 100)}%`,
      ms(p.breaker.ttfbMs),
      rate(p.breaker.throughput),
      p.headroom === null ? '-' : `${format0G(BigInt(p.headroom))} 0G`,
      p.flagged ? 'no (funding policy stopped it)' : p.healthy ? 'yes' : 'yes (its /v1/models failed)',
    ]),
  ])
}

const verify: Command = {
  summary:
    "Attest a provider's TEE signer now: its report with a fresh nonce, the Intel DCAP quote, the signer binding and the workload evidence, and the level reached",
  args: '<provider address>',
  options: {
    ...networkOptions,
    provider: { type: 'string', description: 'provider address (or give it positionally)' },
    'allow-private-urls': { type: 'boolean', description: 'allow a provider (or PCCS) on a private address' },
    'pccs-url': { type: 'string', description: `Intel PCS or a PCCS for the collateral (default ${INTEL_PCS_URL})` },
    collateral: { type: 'string', description: 'collateral JSON file to use instead of fetching it' },
    now: { type: 'string', description: 'verification time, ISO 8601 or unix seconds (default: now)' },
    'measurement-policy': { type: 'string', description: 'L3 allowlists JSON (mrTd, rtmr0-2, composeHashes, …)' },
    'allow-advisories': { type: 'string', description: 'Intel advisories to accept, comma-separated (INTEL-SA-…)' },
    'skip-crl-dates': {
      type: 'boolean',
      description: 'do not check the collateral CRL dates (old captured collateral)',
    },
    'require-gpu': { type: 'boolean', description: 'L3 needs GPU evidence bound to our nonce' },
  },
  async run(values, positionals) {
    const provider = providerArgument(values, positionals)
    const now = nowOf(values)
    const measurementPolicy =
      typeof values['measurement-policy'] === 'string' ? await loadMeasurementPolicy(values['measurement-policy']) : {}
    const { catalog, allowPrivate } = await loadCatalog(values)
    const entry = catalog.byProvider(provider)
    if (!entry)
      throw new UsageError(
        `provider ${provider} is not listed (not registered, not acknowledged, or its URL was refused)`,
      )
    const agent = createProviderAgent({ allowPrivate })
    const attestations = new SignerAttestations({
      dispatcher: agent,
      collateral: collateralOf(values, agent),
      tcbPolicy: {
        ...DEFAULT_TCB_POLICY,
        allowedAdvisories:
          typeof values['allow-advisories'] === 'string'
            ? values['allow-advisories'].split(',').map((a) => a.trim())
            : [],
      },
      measurementPolicy,
      requireGpu: Boolean(values['require-gpu']),
      checkCrlDates: !values['skip-crl-dates'],
      now: () => now,
    })
    try {
      const outcome = await attestations.inspect(entry)
      const reached = providerLevel(entry, outcome.record.level)
      if (values.json) printJson(verifyJson(entry, outcome, reached))
      else process.stdout.write(verifyReport(entry, outcome, reached))
      return outcome.record.level === null ? 1 : 0
    } finally {
      await attestations.close()
      await agent.close()
    }
  },
}

/** The provider, positionally or as --provider (not both). */
function providerArgument(values: Values, positionals: string[]): Address {
  if (positionals.length > 1) throw new UsageError(`one provider at a time, got ${positionals.join(' ')}`)
  const text = positionals[0]
  if (text === undefined) return requireAddress(values, 'provider')
  if (values.provider !== undefined) throw new UsageError('give the provider once: positionally or with --provider')
  if (!isAddress(text, { strict: false })) throw new UsageError(`not an address: ${text}`)
  return getAddress(text)
}

/** A collateral file, or Intel PCS / a PCCS through the guarded agent with a disk cache under the data dir. */
function collateralOf(values: Values, agent: Dispatcher): CollateralProvider {
  if (typeof values.collateral === 'string') {
    const collateral = parseCollateral(JSON.parse(readFileSync(values.collateral, 'utf8')))
    return async () => collateral
  }
  return guardedCollateralSource(agent, {
    baseUrl: typeof values['pccs-url'] === 'string' ? values['pccs-url'] : undefined,
    cacheDir: join(dataDirOf(values), 'collateral'),
  })
}

function verifyJson(entry: CatalogEntry, outcome: AttestationOutcome, reached: VerificationLevel) {
  const { evidence, quote, tcb } = outcome
  return {
    provider: entry.provider,
    url: entry.url,
    verifiability: entry.verifiability,
    teeSigner: entry.teeSignerAddress,
    teeSignerAcknowledged: entry.teeSignerAcknowledged,
    level: reached,
    record: outcome.record,
    dcap: quote
      ? {
          quoteVersion: quote.quoteVersion,
          reportType: quote.reportType,
          status: quote.status,
          advisories: quote.advisoryIds,
          crlDatesChecked: quote.crlDatesChecked,
          mrConfigId: quote.td?.mrConfigId,
          debug: quote.td?.tdAttributes.debug,
          tcb,
        }
      : null,
    evidence: evidence
      ? {
          ok: evidence.ok,
          rtmrReplay: { ok: evidence.rtmrReplay.ok, matches: evidence.rtmrReplay.matches },
          compose: evidence.compose,
          measurements: evidence.measurements,
          gpu: {
            local: evidence.gpu.local && {
              ok: evidence.gpu.local.ok,
              payloadNonce: evidence.gpu.local.payloadNonce,
              reasons: evidence.gpu.local.reasons,
            },
            nras: evidence.gpu.nras,
          },
          reasons: evidence.reasons,
        }
      : null,
  }
}

function verifyReport(entry: CatalogEntry, outcome: AttestationOutcome, reached: VerificationLevel): string {
  const { record, quote, tcb, evidence } = outcome
  const yesNo = (b: boolean) => (b ? 'yes' : 'no')
  const rows: [string, string][] = [
    ['provider', entry.provider],
    ['url', entry.url],
    ['verifiability', entry.verifiability],
    ['on-chain signer', `${entry.teeSignerAddress} (acknowledged: ${yesNo(entry.teeSignerAcknowledged)})`],
    ['tee', record.tee],
    [
      'report',
      record.source === null
        ? 'none'
        : `${record.source === 'quote' ? '/v1/quote' : '/v1/proxy/attestation/report'} (${record.tee === 'none' ? 'no quote' : (record.format ?? 'unreadable')})`,
    ],
    ['nonce sent', record.nonce],
  ]
  if (record.quoteSha256) rows.push(['quote sha256', record.quoteSha256])
  if (quote) {
    rows.push(
      ['dcap', `verified (v${quote.quoteVersion}, ${quote.reportType}): ${quote.status}`],
      ['advisories', quote.advisoryIds.join(', ') || '-'],
      ['crl dates', quote.crlDatesChecked ? 'checked' : 'NOT checked (--skip-crl-dates)'],
    )
    if (tcb) rows.push(['tcb policy', `${tcb.ok ? 'accepted' : 'rejected'}: ${tcb.reason}`])
    for (const w of tcb?.warnings ?? []) rows.push(['warning', w])
    rows.push(
      ['layout', record.layout ?? 'does not bind the signer'],
      ['fresh', `${yesNo(record.fresh)}${record.fresh ? ' (report_data binds our nonce)' : ''}`],
    )
    if (quote.td) {
      rows.push(['mr_td', quote.td.mrTd])
      quote.td.rtmrs.forEach((r, i) => {
        rows.push([`rtmr${i}`, r])
      })
      rows.push(['mr_config_id', quote.td.mrConfigId], ['debug', yesNo(quote.td.tdAttributes.debug)])
    }
  }
  if (evidence) {
    const { rtmrReplay, compose, measurements, gpu } = evidence
    rows.push([
      'event log replay',
      rtmrReplay.ok
        ? 'rtmr0-3 match the quote'
        : `FAILED (${rtmrReplay.matches.map((m, i) => `rtmr${i} ${m ? 'ok' : 'differs'}`).join(', ')})`,
    ])
    rows.push(['compose hash', compose.composeHash ?? 'none in the event log'])
    if (compose.appCompose)
      rows.push(['app_compose', compose.appCompose.ok ? 'hashes to it' : `FAILED: ${compose.appCompose.reason}`])
    if (compose.mrConfigId)
      rows.push([
        'mr_config_id check',
        compose.mrConfigId.ok ? '0x01 ‖ compose hash' : `FAILED: ${compose.mrConfigId.reason}`,
      ])
    rows.push([
      'measurement policy',
      measurements.constrained.length === 0
        ? 'none configured (nothing allow-listed)'
        : measurements.constrained.map((k) => `${k} ${measurements.checks[k]}`).join(', '),
    ])
    rows.push(['gpus', String(record.gpus ?? 0)])
    if (gpu.local)
      rows.push([
        'gpu local check',
        gpu.local.ok ? 'chain, SPDM signature and nonce ok' : `FAILED: ${gpu.local.reasons.join('; ')}`,
      ])
    rows.push(['gpu nras', gpu.nras ? (gpu.nras.ok ? 'ok' : `FAILED: ${gpu.nras.reasons.join('; ')}`) : 'not run'])
  }
  rows.push(['level', levelText(reached, entry)])
  for (const r of record.reasons) rows.push(['not higher', r])
  return `${table(rows)}\n`
}

function levelText(level: VerificationLevel, entry: CatalogEntry): string {
  if (level === 'L1') return 'L1 (on-chain acknowledgement only)'
  if (level === 'L2') return 'L2 (signer bound to a verified TDX quote)'
  if (level === 'L3') return 'L3 (and the measured workload and GPUs)'
  if (level === 'L0') return 'L0 (signer not acknowledged on-chain)'
  return `none (verifiability ${entry.verifiability}: the service does not claim TEE-signed answers)`
}

export const providersGroup: CommandGroup = {
  summary: 'Discover and check the providers of a 0G network',
  commands: { list, verify },
}
