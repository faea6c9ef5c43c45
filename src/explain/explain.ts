import pLimit from 'p-limit'
import { errorMessage } from '../errors.js'
import type { BuildOptions } from '../inputs/inputs.js'
import { sha256Hex, type KeyPlan, type PackagePlan } from '../keys/keys.js'
import type { Log } from '../log.js'
import {
  describeKeyInputs,
  readPinRecord,
  type KeyDescription,
  type PinRecord,
  type PinRecordEntry,
  type PinRecordRead,
} from '../bucket/pin-record.js'
import type { Pin } from '../keys/resolved.js'
import type { RestoreOutcome } from '../restore/outcome.js'
import type { RunSetup } from '../setup/setup.js'
import type { Storage } from '../storage/index.js'
import type { Toolchain } from '../keys/toolchain.js'

/**
 * Why a package (or some of its targets) did not come from the cache, said field by field: the consumer's
 * own key inputs against what a producer stored for the same pin (its pin record).
 */

export type MissKind =
  /** No producer stored this pin under any key. */
  | 'not-stored'
  /** Stored for this pin, under another package key: `text` names the inputs that differ. */
  | 'inputs-differ'
  /** Stored under this very key, but the index is gone or unreadable. */
  | 'index-lost'
  /** The index is there, some of its archives were not restored. */
  | 'targets'
  /** No explanation: the record is unusable, or the cache did not answer. */
  | 'unexplained'

export interface MissReason {
  /** Package identity. */
  package: string
  /** Identity and version (or short revision), for people. */
  label: string
  kind: MissKind
  /** Without the package's name, so that packages with the same reason group. */
  text: string
  /** `inputs-differ` only: Xcode (or its clang) is among the inputs that differ. */
  xcodeChanged?: boolean
}

export interface Explanation {
  reasons: MissReason[]
  /** Every pin record asked for got an answer (found or not found): the cache itself was reachable. */
  cacheAnswered: boolean
}

export interface ExplainContext {
  storage: Storage
  prefix: string
  build: BuildOptions
  toolchain: Toolchain
  salt: string
  concurrency: number
  log: Log
  signal?: AbortSignal
}

export function pinLabel(pin: Pin): string {
  const version = pin.version ?? pin.revision?.slice(0, 10) ?? pin.branch
  return version ? `${pin.identity} ${version}` : pin.identity
}

const emptySaltSha256 = sha256Hex('')
const short = (hex: string) => hex.slice(0, 12)

/** Each input that differs between what was stored and what this run computes, as one sentence. */
export function differences(stored: KeyDescription, now: KeyDescription): string[] {
  const out: string[] = []
  if (stored.format !== now.format) {
    out.push(`stored by a release of this action with key format ${stored.format}, this run uses ${now.format}`)
  }
  if (stored.xcodeVersion !== now.xcodeVersion || stored.xcodeBuildVersion !== now.xcodeBuildVersion) {
    const sameVersion = stored.xcodeVersion === now.xcodeVersion
    const storedName = sameVersion ? `${stored.xcodeVersion} (${stored.xcodeBuildVersion})` : stored.xcodeVersion
    const nowName = sameVersion ? `${now.xcodeVersion} (${now.xcodeBuildVersion})` : now.xcodeVersion
    out.push(
      `stored for Xcode ${stored.xcodeVersion} (${stored.xcodeBuildVersion}), this runner has Xcode ${now.xcodeVersion} (${now.xcodeBuildVersion}): ` +
        `select Xcode ${storedName} or run a producer with ${nowName}`,
    )
  } else if (stored.clangVersion !== now.clangVersion) {
    out.push(
      `stored with ${stored.clangVersion}, this runner has ${now.clangVersion} with the same Xcode: check xcode-select and the Command Line Tools`,
    )
  }
  if (stored.scipioSha256 !== now.scipioSha256) {
    out.push(
      `stored with another Scipio binary (SHA-256 ${short(stored.scipioSha256)}), this run uses ${short(now.scipioSha256)}: ` +
        `install the same Scipio release (scipio-version) on the same architecture, or run a producer with this one`,
    )
  }
  const options: [keyof KeyDescription, string][] = [
    ['configuration', 'configuration'],
    ['frameworkType', 'framework-type'],
    ['supportSimulators', 'support-simulators'],
    ['embedDebugSymbols', 'embed-debug-symbols'],
    ['libraryEvolution', 'library-evolution'],
  ]
  for (const [field, input] of options) {
    if (stored[field] !== now[field])
      out.push(`stored with ${input} ${String(stored[field])}, this run asks for ${String(now[field])}`)
  }
  if (stored.extraArgsSha256 !== now.extraArgsSha256)
    out.push('stored with other extra-args (the record keeps only their SHA-256)')
  if (stored.saltSha256 !== now.saltSha256) {
    if (stored.saltSha256 === emptySaltSha256) out.push('stored without a key-salt, this run sets one')
    else if (now.saltSha256 === emptySaltSha256) out.push('stored with a key-salt, this run sets none')
    else
      out.push(
        `stored with another key-salt (SHA-256 ${short(stored.saltSha256)}, this run's ${short(now.saltSha256)})`,
      )
  }
  if (stored.kind !== now.kind || stored.location !== now.location) {
    out.push(
      `stored for the package at ${stored.location} (${stored.kind}), this run's Package.resolved has ${now.location} (${now.kind})`,
    )
  }
  return out
}

/** The stored entry closest to this run's inputs (fewest differences; the most recent among equals). */
export function closestEntry(
  record: PinRecord,
  now: KeyDescription,
): { entry: PinRecordEntry; differs: string[] } | undefined {
  let best: { entry: PinRecordEntry; differs: string[] } | undefined
  const sorted = [...record.entries].sort((a, b) => Date.parse(b.storedAt) - Date.parse(a.storedAt))
  for (const entry of sorted) {
    const differs = differences(entry.description, now)
    if (!best || differs.length < best.differs.length) best = { entry, differs }
  }
  return best
}

/** One package with no usable index, explained from its pin record. */
export function explainPackage(pkg: PackagePlan, read: PinRecordRead, now: KeyDescription): MissReason {
  const base = { package: pkg.pin.identity, label: pinLabel(pkg.pin) }
  if (read.state === 'unreadable')
    return {
      ...base,
      kind: 'unexplained',
      text: `not in the cache; its pin record could not be read (${read.problem})`,
    }
  if (read.state === 'unusable')
    return {
      ...base,
      kind: 'unexplained',
      text: 'not in the cache; its pin record is unusable, so there is no explanation',
    }
  if (read.state === 'absent' || read.record.entries.length === 0)
    return { ...base, kind: 'not-stored', text: 'no producer has stored this pin yet' }
  const own = read.record.entries.find((e) => e.packageKey === pkg.packageKey)
  if (own) {
    return {
      ...base,
      kind: 'index-lost',
      text: `a producer stored this pin with these exact inputs (${own.storedAt}), but its index is gone or unreadable now; the next producer run stores it again`,
    }
  }
  const closest = closestEntry(read.record, now)!
  const text =
    closest.differs.length > 0
      ? closest.differs.join('; ')
      : 'stored under another package key, with inputs the record does not show (for example credentials in the package URL)'
  const stored = closest.entry.description
  const xcodeChanged =
    stored.xcodeVersion !== now.xcodeVersion ||
    stored.xcodeBuildVersion !== now.xcodeBuildVersion ||
    stored.clangVersion !== now.clangVersion
  return { ...base, kind: 'inputs-differ', text, ...(xcodeChanged ? { xcodeChanged } : {}) }
}

/**
 * Explains the packages of `missing` from their pin records, in plan order. Never throws; after the first
 * fatal storage fault it asks nothing more.
 */
export async function explainPackages(ctx: ExplainContext, missing: PackagePlan[]): Promise<Explanation> {
  const limit = pLimit(ctx.concurrency)
  let fatal: string | undefined
  let answered = true
  const reasons = await Promise.all(
    missing.map((pkg) =>
      limit(async () => {
        const read: PinRecordRead = fatal
          ? { state: 'unreadable', problem: fatal, fatal: true }
          : await readPinRecord(ctx.storage, ctx.prefix, pkg.pin, ctx.signal)
        if (read.state === 'unreadable') {
          answered = false
          if (read.fatal) fatal ??= read.problem
        }
        if (read.state === 'unusable') ctx.log.debug(`Ignoring the pin record of ${pinLabel(pkg.pin)}: ${read.problem}`)
        return explainPackage(pkg, read, describeKeyInputs(pkg.pin, ctx.build, ctx.toolchain, ctx.salt))
      }),
    ),
  )
  return { reasons, cacheAnswered: answered }
}

/** Reasons for a restore: packages without an index from their pin records, missed targets from the restore. */
export async function explainMisses(ctx: ExplainContext, plan: KeyPlan, outcome: RestoreOutcome): Promise<Explanation> {
  const missing = plan.packages.filter((p) => outcome.packagesMissing.includes(p.pin.identity))
  const explained = missing.length > 0 ? await explainPackages(ctx, missing) : { reasons: [], cacheAnswered: true }
  const reasons = [...explained.reasons]
  let answered = explained.cacheAnswered
  for (const pkg of plan.packages) {
    const missed = outcome.targets.filter((t) => t.package === pkg.pin.identity && t.result === 'missed')
    if (missed.length === 0) continue
    if (missed.some((t) => t.reason === 'cache unavailable' || t.reason === 'cache time limit reached'))
      answered = false
    const text = missed
      .sort((a, b) => (a.targetName < b.targetName ? -1 : 1))
      .map((t) => `${t.targetName}: ${t.reason ?? 'not restored'}`)
      .join('; ')
    reasons.push({ package: pkg.pin.identity, label: pinLabel(pkg.pin), kind: 'targets', text })
  }
  return { reasons, cacheAnswered: answered }
}

/** Targets Scipio rebuilt although they came from the cache (their VersionFile did not match Scipio's key). */
export function rebuiltAfterRestore(outcome: RestoreOutcome | undefined, built: string[]): MissReason[] {
  const came = new Map(
    (outcome?.targets ?? [])
      .filter((t) => t.result === 'restored' || t.result === 'kept')
      .map((t) => [t.targetName, t]),
  )
  const rebuilt = new Set(built)
  return built
    .filter((name) => came.has(name))
    .map((name) => {
      const t = came.get(name)!
      // A dependency Scipio rebuilt too changed this target's key: name it.
      const dep = t.entry?.dependencyCacheKeyChecksums?.find((d) => rebuilt.has(d.targetName))
      return {
        package: t.package,
        label: t.package,
        kind: 'targets' as const,
        text: dep
          ? `${name}: ${t.result} from the cache, but Scipio rebuilt it because its dependency ${dep.targetName} was rebuilt`
          : `${name}: ${t.result} from the cache, but Scipio rebuilt it (its VersionFile did not match the key Scipio computed, for example after a dependency changed)`,
      }
    })
}

export interface CascadeLine {
  /** The change at the bottom: "swift-log 1.6.1 → 1.6.2". */
  cause: string
  /** The targets built because of it, sorted. */
  targets: string[]
}

/** Which change made which dependents miss (restore/choose.ts), the widest cascade first. */
export function cascade(outcome: RestoreOutcome | undefined): CascadeLine[] {
  const byCause = new Map<string, string[]>()
  for (const t of outcome?.targets ?? []) {
    if (t.result !== 'missed' || t.cause === undefined) continue
    byCause.set(t.cause, [...(byCause.get(t.cause) ?? []), t.targetName])
  }
  return [...byCause]
    .map(([cause, targets]) => ({ cause, targets: targets.sort() }))
    .sort((a, b) => b.targets.length - a.targets.length || (a.cause < b.cause ? -1 : 1))
}

/** "swift-log 1.6.1 → 1.6.2 made 2 dependents miss: Kingfisher, LoggingUI". */
export function cascadeLines(lines: CascadeLine[]): string[] {
  return lines.map(
    (l) =>
      `${l.cause} made ${l.targets.length} ${l.targets.length === 1 ? 'dependent' : 'dependents'} miss: ${l.targets.join(', ')}`,
  )
}

/** `miss-reasons`: package identity → reason (several reasons of one package joined). */
export function missReasonsOutput(reasons: MissReason[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const r of reasons) out[r.package] = out[r.package] ? `${out[r.package]}; ${r.text}` : r.text
  return out
}

export interface ReasonGroup {
  text: string
  kind: MissKind
  labels: string[]
}

/** Packages with the same reason together, the largest group first. */
export function groupReasons(reasons: MissReason[]): ReasonGroup[] {
  const groups = new Map<string, ReasonGroup>()
  for (const r of reasons) {
    const id = `${r.kind}\0${r.text}`
    const group = groups.get(id) ?? { text: r.text, kind: r.kind, labels: [] }
    group.labels.push(r.label)
    groups.set(id, group)
  }
  return [...groups.values()].sort((a, b) => b.labels.length - a.labels.length)
}

/** "all 40 packages", "swift-log 1.6.3" or "3 packages (a 1.0, b 2.0, c 3.0)". */
export function groupSubject(group: ReasonGroup, totalPackages: number): string {
  const n = group.labels.length
  if (n === 1) return group.labels[0]!
  const names = n <= 5 ? group.labels.join(', ') : `${group.labels.slice(0, 5).join(', ')} and ${n - 5} more`
  if (n === totalPackages && totalPackages > 1) return `all ${n} packages`
  return `${n} packages (${names})`
}

/** "all 40 packages: stored for Xcode ...". */
export function groupLine(group: ReasonGroup, totalPackages: number): string {
  return `${groupSubject(group, totalPackages)}: ${group.text}`
}

export function reasonLines(reasons: MissReason[], totalPackages: number): string[] {
  return groupReasons(reasons).map((g) => groupLine(g, totalPackages))
}

export function logExplanation(explanation: Explanation, totalPackages: number, log: Log): void {
  if (explanation.reasons.length === 0) return
  log.info('Why these were not restored:')
  for (const line of reasonLines(explanation.reasons, totalPackages)) log.info(`  ${line}`)
}

/**
 * The one loud warning when nothing at all came from the cache although it answered; undefined otherwise.
 * Not when the restore met cache errors (it has warned about each already), and not for a producer that
 * finds its pins simply not stored yet (it is about to store them).
 */
export function nothingHitWarning(
  outcome: RestoreOutcome | undefined,
  explanation: Explanation | undefined,
  totalPackages: number,
  /** What had to be done instead, e.g. "7 built" or "5 missing"; 0 when nothing was needed. */
  needed: { count: number; what: string },
  producing: boolean,
): string | undefined {
  if (!outcome || !explanation || !explanation.cacheAnswered || outcome.problems.length > 0 || needed.count === 0)
    return undefined
  const hits = outcome.targets.filter((t) => t.result !== 'missed').length
  if (hits > 0 || explanation.reasons.length === 0) return undefined
  if (producing && explanation.reasons.every((r) => r.kind === 'not-stored')) return undefined
  const dominant = groupReasons(explanation.reasons)[0]!
  return (
    `Nothing came from the cache (${needed.count} ${needed.what}), although the cache answered. ` +
    `Most common reason, for ${groupSubject(dominant, totalPackages)}: ${dominant.text}. ` +
    `See "Why frameworks were built" in the job summary, or the miss-reasons output.`
  )
}

/** After a restore: explains what it could not provide and logs the reasons grouped. Never throws. */
export async function explainStage(setup: RunSetup, outcome: RestoreOutcome, log: Log): Promise<Explanation> {
  const { config, plan, storage, toolchain } = setup
  // Explaining is worth at most one stall timeout: a cache that stops answering must not hold up the build.
  const signal = AbortSignal.timeout(config.stallTimeoutMs)
  const ctx: ExplainContext = {
    storage,
    prefix: config.prefix,
    build: config.build,
    toolchain,
    salt: config.keySalt,
    concurrency: config.concurrency,
    log,
    signal,
  }
  const explanation = await explainMisses(ctx, plan, outcome).catch((error: unknown): Explanation => {
    log.debug(`Could not explain the misses: ${errorMessage(error)}`)
    return { reasons: [], cacheAnswered: false }
  })
  logExplanation(explanation, plan.packages.length, log)
  return explanation
}
