import * as path from 'node:path'
import pLimit from 'p-limit'
import { parseCompleteMarker, parseIndex, type PackageIndex } from '../bucket/cache-index.js'
import { errorMessage, StorageError } from '../errors.js'
import { explainPackages, reasonLines, type MissReason } from '../explain/explain.js'
import { scanOutput } from '../keys/frameworks.js'
import type { PackagePlan } from '../keys/keys.js'
import type { Log } from '../log.js'
import { formatBytes } from '../report/report.js'
import { pinCandidates } from '../save/attribution.js'
import type { RunSetup } from '../setup/setup.js'
import { getJson } from '../storage/index.js'
import { answerOf, ReadRule, type ReadAnswer } from '../storage/refusals.js'

/** What the cache holds for this project: per pin its index and archives, per local framework whether it is stored. */

export type Presence = 'stored' | 'missing'

export interface TargetStatus {
  targetName: string
  scipioKey: string
  key: string
  size: number
  state: Presence
  reason?: string
}

export interface PackageStatus {
  identity: string
  version?: string
  revision?: string
  packageKey: string
  indexKey: string
  index: Presence
  reason?: string
  /** With --explain, for a missing index: which inputs differ from what a producer stored for this pin. */
  explanation?: string
  targets: TargetStatus[]
}

export interface LocalStatus {
  targetName: string
  scipioKey: string
  packages: string[]
  state: Presence | 'unmatched'
  reason?: string
}

export interface StatusReport {
  schema: 'scipio-s3-cache/status/v1'
  cache: string
  prefix: string
  setKey: string
  completeKey: string
  markedComplete: boolean
  /** Every read of the marker and the indexes was refused (storage/refusals.ts): the command exits 1. */
  unavailable?: string
  outputDirectory: string
  packages: PackageStatus[]
  local: LocalStatus[]
  /** Indexes, archives and local frameworks missing from the cache. */
  missing: number
  /** With --explain: the reasons, packages with the same reason on one line. */
  explanations?: string[]
}

/** What a refused read (403) is reported as: the store hides missing keys, so both are possible. */
const notStoredOrForbidden = 'not stored, or not readable with these credentials (403)'

/**
 * Storage faults (permissions, network) abort the command; a refused read (storage/refusals.ts) and an unusable
 * object are reported as missing.
 */
async function readJson<T>(
  setup: RunSetup,
  rule: ReadRule,
  key: string,
  parse: (raw: unknown) => T,
): Promise<{ value?: T; reason?: string }> {
  let answer: ReadAnswer<unknown>
  try {
    answer = await answerOf(() => getJson(setup.storage, key), rule)
  } catch (error) {
    if (error instanceof StorageError) throw error
    return { reason: errorMessage(error) }
  }
  if (answer.refused) return { reason: notStoredOrForbidden }
  const raw = answer.value
  if (raw === undefined) return { reason: 'not in the cache' }
  try {
    return { value: parse(raw) }
  } catch (error) {
    return { reason: `unusable: ${errorMessage(error)}` }
  }
}

async function packageStatus(
  setup: RunSetup,
  rule: ReadRule,
  pkg: PackagePlan,
  limit: ReturnType<typeof pLimit>,
): Promise<{ status: PackageStatus; index?: PackageIndex }> {
  const { storage, config } = setup
  const base = {
    identity: pkg.pin.identity,
    ...(pkg.pin.version ? { version: pkg.pin.version } : {}),
    ...(pkg.pin.revision ? { revision: pkg.pin.revision } : {}),
    packageKey: pkg.packageKey,
    indexKey: pkg.indexKey,
  }
  const read = await limit(() =>
    readJson(setup, rule, pkg.indexKey, (raw) => parseIndex(raw, config.prefix, pkg.packageKey)),
  )
  if (!read.value)
    return { status: { ...base, index: 'missing', ...(read.reason ? { reason: read.reason } : {}), targets: [] } }
  const index = read.value
  const targets = await Promise.all(
    index.targets.map((entry) =>
      limit(async (): Promise<TargetStatus> => {
        const common = { targetName: entry.targetName, scipioKey: entry.scipioKey, key: entry.key, size: entry.size }
        const answer = await answerOf(() => storage.head(entry.key))
        if (answer.refused) return { ...common, state: 'missing', reason: notStoredOrForbidden }
        const head = answer.value
        if (!head) return { ...common, state: 'missing', reason: 'the archive the index lists is not in the cache' }
        // A public URL may not report a length (0): only a reported, different size counts against it.
        if (head.size && head.size !== entry.size)
          return { ...common, state: 'missing', reason: `size ${head.size} differs from the index's ${entry.size}` }
        return { ...common, state: 'stored' }
      }),
    ),
  )
  return { status: { ...base, index: 'stored', targets }, index }
}

export async function cacheStatus(setup: RunSetup): Promise<StatusReport> {
  const { config, plan, storage } = setup
  const limit = pLimit(config.concurrency)
  const rule = new ReadRule()
  const marker = readJson(setup, rule, plan.completeKey, (raw) => parseCompleteMarker(raw, plan.setKey))
  const perPackage = await Promise.all(plan.packages.map((pkg) => packageStatus(setup, rule, pkg, limit)))
  const byKey = new Map(plan.packages.map((pkg, i) => [pkg.packageKey, perPackage[i]!]))

  const local: LocalStatus[] = []
  for (const framework of (await scanOutput(config.outputDirectory)).values()) {
    const owners = pinCandidates(framework, plan)
    const base = {
      targetName: framework.targetName,
      scipioKey: framework.scipioKey,
      packages: owners.map((o) => o.pin.identity),
    }
    if (owners.length === 0) {
      local.push({
        ...base,
        state: 'unmatched',
        reason: 'no pin in Package.resolved has its revision (a local or root package)',
      })
      continue
    }
    const stored = owners.some((owner) =>
      byKey
        .get(owner.packageKey)
        ?.status.targets.some(
          (t) => t.targetName === framework.targetName && t.scipioKey === framework.scipioKey && t.state === 'stored',
        ),
    )
    const indexed = owners.some((owner) => byKey.get(owner.packageKey)?.index)
    const reason = indexed
      ? "the package's index lists another build of it, or its archive is missing"
      : "its package's index is not in the cache"
    local.push(stored ? { ...base, state: 'stored' } : { ...base, state: 'missing', reason })
  }

  const packages = perPackage.map((p) => p.status)
  const missing =
    packages.filter((p) => p.index === 'missing').length +
    packages.flatMap((p) => p.targets).filter((t) => t.state === 'missing').length +
    local.filter((l) => l.state === 'missing').length
  const markedComplete = (await marker).value !== undefined
  const verdict = rule.verdict()
  return {
    schema: 'scipio-s3-cache/status/v1',
    cache: storage.description,
    prefix: config.prefix,
    setKey: plan.setKey,
    completeKey: plan.completeKey,
    markedComplete,
    ...(verdict ? { unavailable: verdict.message } : {}),
    outputDirectory: config.outputDirectory,
    packages,
    local: local.sort((a, b) => (a.targetName < b.targetName ? -1 : 1)),
    missing,
  }
}

/** --explain: reads the pin record of every package whose index is missing and says why it is missing. */
export async function explainStatus(setup: RunSetup, report: StatusReport, log: Log): Promise<StatusReport> {
  const { config, plan, storage, toolchain } = setup
  const missing = plan.packages.filter((p) =>
    report.packages.some((s) => s.packageKey === p.packageKey && s.index === 'missing'),
  )
  const explained = await explainPackages(
    {
      storage,
      prefix: config.prefix,
      build: config.build,
      toolchain,
      salt: config.keySalt,
      concurrency: config.concurrency,
      log,
    },
    missing,
  )
  const byIdentity = new Map<string, MissReason>(explained.reasons.map((r) => [r.package, r]))
  const packages = report.packages.map((p) => {
    const reason = p.index === 'missing' ? byIdentity.get(p.identity) : undefined
    return reason ? { ...p, explanation: reason.text } : p
  })
  return { ...report, packages, explanations: reasonLines(explained.reasons, plan.packages.length) }
}

/** Keeps only what is missing (and the packages that hold something missing). */
export function onlyMissing(report: StatusReport): StatusReport {
  const packages = report.packages
    .map((p) => ({ ...p, targets: p.targets.filter((t) => t.state === 'missing') }))
    .filter((p) => p.index === 'missing' || p.targets.length > 0)
  return { ...report, packages, local: report.local.filter((l) => l.state === 'missing') }
}

export function renderStatus(report: StatusReport, cwd: string): string {
  const lines: string[] = []
  lines.push(`Cache: ${report.cache}${report.prefix ? `, prefix ${report.prefix}` : ''}`)
  lines.push(
    `Build set ${report.setKey.slice(0, 12)}: ${report.markedComplete ? 'marked complete by a producer' : 'not marked complete'}`,
  )
  for (const p of report.packages) {
    const version = p.version ?? p.revision?.slice(0, 10) ?? ''
    lines.push(
      `${p.identity} ${version} (package key ${p.packageKey.slice(0, 12)}): index ${p.index}${p.reason ? ` (${p.reason})` : ''}`,
    )
    if (p.explanation) lines.push(`  why: ${p.explanation}`)
    for (const t of p.targets) {
      lines.push(
        `  ${t.state.padEnd(8)} ${t.targetName}  ${formatBytes(t.size)}  ${t.key}${t.reason ? `  (${t.reason})` : ''}`,
      )
    }
  }
  if (report.local.length > 0) {
    lines.push(`Local frameworks in ${path.relative(cwd, report.outputDirectory) || '.'}:`)
    for (const l of report.local) {
      const owners = l.packages.length ? ` (${l.packages.join(', ')})` : ''
      lines.push(`  ${l.state.padEnd(9)} ${l.targetName}${owners}${l.reason ? `: ${l.reason}` : ''}`)
    }
  }
  lines.push(report.missing === 0 ? 'Nothing is missing.' : `${report.missing} missing.`)
  if (report.explanations?.length) lines.push('Why:', ...report.explanations.map((l) => `  ${l}`))
  return `${lines.join('\n')}\n`
}
