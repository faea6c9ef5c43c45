import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import pLimit from 'p-limit'
import { canRead } from '../archive/archive.js'
import { CorruptArchiveError, defaultExtractLimits, UnsafeArchiveError } from '../archive/guard.js'
import { parseCompleteMarker, parseIndex, type IndexEntry, type PackageIndex } from '../bucket/cache-index.js'
import { extractor, type Extracted, type ExtractSpec } from '../archive/extract-pool.js'
import {
  CacheTimeoutError,
  CancelledError,
  DiskFullError,
  errorMessage,
  isDiskFull,
  MissingObjectError,
  StorageError,
  stopReason,
} from '../errors.js'
import { frameworkFolder, scanOutput, versionFileName, type LocalFramework } from '../keys/frameworks.js'
import { scipioKey, type KeyPlan, type PackagePlan } from '../keys/keys.js'
import type { Log } from '../log.js'
import { defaultRetryPolicy, withRetry, type RetryPolicy } from '../retry.js'
import { aarMissReason, restoreAppleArchive } from '../interop/scipio-s3-storage.js'
import { AarFormat, sharedLayout, type Layout } from '../bucket/layout.js'
import { layerIndexes } from '../bucket/layers.js'
import { StallWatch } from '../archive/stall-watch.js'
import { getJson, type Storage } from '../storage/index.js'
import { PlainGetError, StallError } from '../storage/plain-get.js'
import { parseSetManifest } from '../bucket/set-manifest.js'
import { DiskSpace } from './disk-space.js'
import { disown, own, stagingFolderName, sweepLeftovers } from '../archive/owned-folders.js'
import { InFlight, indexReadsInFlight } from './in-flight.js'
import { chooseEntries, type DependencyMiss, type IndexSource } from './choose.js'

/** restored: downloaded and placed; kept: already in place; available: stored (lookup-only); missed: must be built. */
export type RestoreResultKind = 'restored' | 'kept' | 'available' | 'missed'

/**
 * Why a target missed. Only `absent` (the store answered 404) and `damaged` (bytes that fail the size, SHA-256,
 * VersionFile or entry-guard check) say the stored entry is bad, so that a producer replaces it; `unavailable`
 * (the time limit, a transient or configuration fault, a format or tool this runner lacks) says nothing about it.
 */
export type MissKind = 'absent' | 'damaged' | 'unavailable'

export interface RestoredTarget {
  targetName: string
  package: string
  result: RestoreResultKind
  bytes: number
  ms: number
  entry?: IndexEntry
  reason?: string
  /** The scope whose archive this is; absent: the shared cache's (or nothing came from the cache). */
  scope?: string
  /** Set on every miss. */
  miss?: MissKind
  /** A miss because of a dependency: the change at the bottom of the cascade ("swift-log 1.6.1 → 1.6.2"). */
  cause?: string
}

/** Whether a restore miss found the stored entry itself gone or damaged: the only misses a producer replaces. */
export function entryIsBad(target: RestoredTarget): boolean {
  return target.result === 'missed' && (target.miss === 'absent' || target.miss === 'damaged')
}

export interface RestoreOutcome {
  /** Index per package key as read; save reuses them instead of asking again. */
  indexes: Map<string, PackageIndex>
  /** Packages with no usable index (never produced, or unreadable). */
  packagesMissing: string[]
  targets: RestoredTarget[]
  /** True when a producer marked this exact build complete and everything it listed is now in place. */
  complete: boolean
  /** The indexes came from the completion marker's manifest (none was read). */
  fromManifest?: boolean
  /** Cache errors (not plain misses), for `strict`. */
  problems: string[]
}

export interface RestoreContext {
  storage: Storage
  plan: KeyPlan
  prefix: string
  outputDirectory: string
  concurrency: number
  log: Log
  retry?: RetryPolicy
  /** No bytes for this long aborts a download (and retries it). */
  stallTimeoutMs?: number
  /** Aborts when the cache phase's time limit is reached or the run is cancelled: what is left becomes a miss. */
  signal?: AbortSignal
  /** Report what is stored without downloading anything. */
  lookupOnly?: boolean
  /** A scope read before the shared cache (`plan`, `prefix`): the first hit per framework wins. */
  scope?: Layout
}

/** The layouts this restore reads, in order: the scope first, then the shared cache. */
function layoutsOf(ctx: RestoreContext): Layout[] {
  const shared = sharedLayout(ctx.prefix, ctx.plan)
  return ctx.scope ? [ctx.scope, shared] : [shared]
}

/** The scope that holds `entry`'s archive, when it is the scope's own object. */
function scopeOf(ctx: RestoreContext, entry: IndexEntry): { scope?: string } {
  return ctx.scope?.scope && entry.key.startsWith(`${ctx.scope.prefix}/`) ? { scope: ctx.scope.scope } : {}
}

/** Shared by one restore: the first configuration error stops every further request. */
class Breaker {
  error: StorageError | undefined
  trip(error: unknown, log: Log): boolean {
    if (!(error instanceof StorageError) || !error.fatal) return false
    if (!this.error) {
      this.error = error
      log.warning(`The cache is unavailable: ${error.message} Every framework not yet restored will be built.`)
    }
    return true
  }
}

class IntegrityError extends Error {
  override name = 'IntegrityError'
}

/**
 * Runs a request that must answer (headers, or a whole small object) within `ms`; the abort it sends on
 * expiry is a retryable stall, unlike the cache-wide time limit in `outer`.
 */
async function answerWithin<T>(
  ms: number,
  outer: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const stall = new AbortController()
  const timer = setTimeout(() => stall.abort(), ms)
  try {
    return await fn(outer ? AbortSignal.any([outer, stall.signal]) : stall.signal)
  } catch (error) {
    if (stall.signal.aborted && !outer?.aborted) throw new StallError(`no answer for ${Math.round(ms / 1000)} s`)
    throw error
  } finally {
    clearTimeout(timer)
  }
}

function isRetryableDownload(error: unknown): boolean {
  if (error instanceof UnsafeArchiveError || error instanceof CacheTimeoutError || isDiskFull(error)) return false
  if (error instanceof StorageError) return error.retryable && !error.fatal
  return true // resets, truncation, stalls, corrupted bytes: a fresh attempt may succeed
}

/**
 * Removes a folder tar may still be writing into: after a failed extraction, writes already under way
 * (an open file, a folder being made) can finish after the failure and bring paths back, so remove until
 * the folder stays gone.
 */
export async function removeSettled(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, attempt === 0 ? 5 : 20))
    if (!(await exists(dir))) return
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  )
}

/**
 * Moves an extracted framework and VersionFile into the output folder. The old VersionFile leaves first and
 * the new one arrives last, so no VersionFile ever stands beside a framework it doesn't describe; on any
 * failure the previous pair is put back.
 */
export async function placeFramework(
  staging: string,
  outputDirectory: string,
  targetName: string,
  trash: string,
): Promise<void> {
  const folder = frameworkFolder(targetName)
  const file = versionFileName(targetName)
  const moves: [from: string, to: string][] = []
  const move = async (from: string, to: string) => {
    await fs.rename(from, to)
    moves.push([from, to])
  }
  try {
    const oldFile = await exists(path.join(outputDirectory, file))
    const oldFolder = await exists(path.join(outputDirectory, folder))
    if (oldFile || oldFolder) await fs.mkdir(trash, { recursive: true })
    if (oldFile) await move(path.join(outputDirectory, file), path.join(trash, file))
    if (oldFolder) await move(path.join(outputDirectory, folder), path.join(trash, folder))
    await move(path.join(staging, folder), path.join(outputDirectory, folder))
    await move(path.join(staging, file), path.join(outputDirectory, file))
  } catch (error) {
    for (const [from, to] of moves.reverse()) await fs.rename(to, from).catch(() => undefined)
    throw error
  }
}

/** A target's miss reason once the restore's signal aborted: the time limit, a cancellation or a full disk. */
export function stoppedMiss(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason
  if (reason instanceof CancelledError) return 'cancelled'
  if (reason instanceof DiskFullError) return 'disk full'
  return 'cache time limit reached'
}

/** The retry policy with its back-off cut short when `signal` aborts: a cancelled run does not sleep out a delay. */
function interruptible(policy: RetryPolicy, signal: AbortSignal | undefined): RetryPolicy {
  if (!signal) return policy
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve()
      const done = () => {
        signal.removeEventListener('abort', done)
        resolve()
      }
      signal.addEventListener('abort', done, { once: true })
      policy.sleep(ms).then(done, done)
    })
  return { ...policy, sleep }
}

function stallWatch(stallMs: number): StallWatch {
  return new StallWatch(stallMs, () => new StallError(`no data for ${Math.round(stallMs / 1000)} s`))
}

async function downloadInto(ctx: RestoreContext, entry: IndexEntry, staging: string): Promise<void> {
  if (ctx.signal?.aborted) throw new CacheTimeoutError()
  if (entry.format === AarFormat) {
    return restoreAppleArchive(entry, staging, {
      open: () =>
        answerWithin(ctx.stallTimeoutMs ?? 60_000, ctx.signal, (signal) => ctx.storage.get(entry.key, signal)),
      watch: () => stallWatch(ctx.stallTimeoutMs ?? 60_000),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    })
  }
  const spec = {
    destination: staging,
    format: entry.format,
    roots: { folder: frameworkFolder(entry.targetName), file: versionFileName(entry.targetName) },
    limits: defaultExtractLimits,
  }
  const received = ctx.storage.direct
    ? await fetchDirect(ctx, ctx.storage.direct, entry, spec)
    : await fetchThroughMainThread(ctx, entry, spec)
  if (received.bytes !== entry.size)
    throw new IntegrityError(`received ${received.bytes} bytes, the index records ${entry.size}`)
  if (received.sha256 !== entry.sha256)
    throw new IntegrityError(`SHA-256 ${received.sha256} differs from the index's ${entry.sha256}`)
  const versionBytes = await fs.readFile(path.join(staging, versionFileName(entry.targetName)))
  if (scipioKey(versionBytes) !== entry.scipioKey) {
    throw new IntegrityError(`the VersionFile inside does not match the key ${entry.scipioKey}`)
  }
  if (!(await fs.stat(path.join(staging, frameworkFolder(entry.targetName)))).isDirectory()) {
    throw new IntegrityError(`the archive holds no ${frameworkFolder(entry.targetName)} folder`)
  }
}

/** The extraction thread downloads the archive itself, with a GET the store signed here. */
async function fetchDirect(
  ctx: RestoreContext,
  direct: NonNullable<Storage['direct']>,
  entry: IndexEntry,
  spec: ExtractSpec,
): Promise<Extracted> {
  const get = await direct.request(entry.key)
  try {
    return await extractor(ctx.concurrency).fetch(get, spec, {
      stallMs: ctx.stallTimeoutMs ?? 60_000,
      expectedBytes: entry.size,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    })
  } catch (error) {
    if (ctx.signal?.aborted) throw new CacheTimeoutError()
    if (!(error instanceof PlainGetError)) throw error
    throw direct.explain(entry.key, error.failure) ?? new MissingObjectError(entry.key)
  }
}

/** This thread receives the archive and hands its bytes to an extraction thread. */
async function fetchThroughMainThread(ctx: RestoreContext, entry: IndexEntry, spec: ExtractSpec): Promise<Extracted> {
  const object = await answerWithin(ctx.stallTimeoutMs ?? 60_000, ctx.signal, (signal) =>
    ctx.storage.get(entry.key, signal),
  )
  if (!object) throw new MissingObjectError(entry.key)
  if (object.size && object.size !== entry.size) {
    object.body.destroy()
    throw new IntegrityError(`size ${object.size} differs from the index's ${entry.size}`)
  }
  const abort = () => object.body.destroy(new CacheTimeoutError())
  ctx.signal?.addEventListener('abort', abort, { once: true })
  try {
    return await extractor(ctx.concurrency).extract(object.body, [stallWatch(ctx.stallTimeoutMs ?? 60_000)], spec)
  } finally {
    ctx.signal?.removeEventListener('abort', abort)
  }
}

async function lookUp(
  ctx: RestoreContext,
  entry: IndexEntry,
  base: Omit<RestoredTarget, 'result' | 'bytes' | 'ms'>,
): Promise<RestoredTarget> {
  const head = await ctx.storage.head(entry.key)
  if (head && head.size === entry.size) return { ...base, result: 'available', bytes: 0, ms: 0 }
  return {
    ...base,
    result: 'missed',
    bytes: 0,
    ms: 0,
    reason: head ? 'stored archive has another size than the index records' : 'archive listed in the index is missing',
    miss: head ? 'damaged' : 'absent',
  }
}

/** A miss that says nothing about the stored entry (see MissKind). */
function unavailable(
  base: Omit<RestoredTarget, 'result' | 'bytes' | 'ms'>,
  ms: number,
  reason: string,
): RestoredTarget {
  return { ...base, result: 'missed', bytes: 0, ms, reason, miss: 'unavailable' }
}

/** What a failed download says about the stored entry: only a 404 or bytes that fail a check condemn it. */
function missKindOf(error: unknown): MissKind {
  if (error instanceof MissingObjectError) return 'absent'
  if (error instanceof UnsafeArchiveError || error instanceof IntegrityError || error instanceof CorruptArchiveError)
    return 'damaged'
  return 'unavailable'
}

async function restoreTarget(
  ctx: RestoreContext,
  pkg: PackagePlan,
  entry: IndexEntry,
  local: Map<string, LocalFramework>,
  tempRoot: string,
  breaker: Breaker,
  space: DiskSpace,
  problems: string[],
): Promise<RestoredTarget> {
  const started = Date.now()
  const base = { targetName: entry.targetName, package: pkg.pin.identity, entry, ...scopeOf(ctx, entry) }
  const present = local.get(entry.targetName)
  if (present && present.scipioKey === entry.scipioKey) return { ...base, result: 'kept', bytes: 0, ms: 0 }
  if (entry.format === AarFormat) {
    const unreadable = await aarMissReason(ctx.log)
    if (unreadable) return { ...base, result: 'missed', bytes: 0, ms: 0, reason: unreadable, miss: 'unavailable' }
  } else if (!canRead(entry.format)) {
    return {
      ...base,
      result: 'missed',
      bytes: 0,
      ms: 0,
      reason: `stored as ${entry.format}, which this Node.js cannot decompress (use Node 24)`,
      miss: 'unavailable',
    }
  }
  if (breaker.error) return unavailable(base, 0, 'cache unavailable')
  if (!ctx.lookupOnly) space.wanted += entry.size
  if (ctx.signal?.aborted) return unavailable(base, 0, stoppedMiss(ctx.signal))
  if (ctx.lookupOnly) {
    try {
      return await lookUp(ctx, entry, base)
    } catch (error) {
      if (!breaker.trip(error, ctx.log)) problems.push(`${entry.targetName}: ${errorMessage(error)}`)
      return unavailable(base, 0, errorMessage(error))
    }
  }
  // No download starts that cannot fit: the first that would not is where the restore stops.
  if (!space.reserve(entry.size)) {
    space.trip('check')
    return unavailable(base, 0, stoppedMiss(ctx.signal))
  }
  const slot = path.join(tempRoot, randomBytes(6).toString('hex'))
  let placed = false
  try {
    await withRetry(
      interruptible(ctx.retry ?? defaultRetryPolicy, ctx.signal),
      isRetryableDownload,
      async (attempt) => {
        // Only a failed attempt can leave writes under way; the first starts from nothing.
        if (attempt > 1) await removeSettled(slot)
        await fs.mkdir(path.join(slot, 'staging'), { recursive: true })
        await downloadInto(ctx, entry, path.join(slot, 'staging'))
      },
      (error, attempt) =>
        ctx.log.info(`${entry.targetName}: attempt ${attempt} failed (${errorMessage(error)}); retrying`),
    )
    await placeFramework(path.join(slot, 'staging'), ctx.outputDirectory, entry.targetName, path.join(slot, 'previous'))
    placed = true
    return { ...base, result: 'restored', bytes: entry.size, ms: Date.now() - started }
  } catch (error) {
    const ms = Date.now() - started
    space.release(entry.size)
    if (isDiskFull(error) && !ctx.signal?.aborted) {
      ctx.log.debug(`${entry.targetName}: ${errorMessage(error)}`)
      space.trip('write')
    }
    if (error instanceof CacheTimeoutError || ctx.signal?.aborted) return unavailable(base, ms, stoppedMiss(ctx.signal))
    if (breaker.trip(error, ctx.log)) return unavailable(base, ms, 'cache unavailable')
    const miss = missKindOf(error)
    const kind =
      error instanceof UnsafeArchiveError
        ? 'unsafe archive'
        : miss === 'damaged'
          ? 'integrity check failed'
          : 'download failed'
    const reason = `${kind}: ${errorMessage(error)}`
    ctx.log.warning(`Cache miss for ${entry.targetName} (${pkg.pin.identity}): ${reason}. It will be built.`)
    problems.push(`${entry.targetName}: ${reason}`)
    return { ...base, result: 'missed', bytes: 0, ms, reason, miss }
  } finally {
    // After a success nothing writes into the slot any more (the extraction settled before placing).
    if (placed) await fs.rm(slot, { recursive: true, force: true }).catch(() => undefined)
    else await removeSettled(slot)
  }
}

async function readIndex(
  ctx: RestoreContext,
  pkg: PackagePlan,
  breaker: Breaker,
  problems: string[],
  layout: Layout = sharedLayout(ctx.prefix, ctx.plan),
): Promise<PackageIndex | undefined> {
  if (breaker.error || ctx.signal?.aborted) return undefined
  try {
    const raw = await withRetry(
      interruptible(ctx.retry ?? defaultRetryPolicy, ctx.signal),
      (e) => !(e instanceof StorageError && e.fatal) && isRetryableDownload(e),
      () =>
        answerWithin(ctx.stallTimeoutMs ?? 60_000, ctx.signal, (signal) => getJson(ctx.storage, pkg.indexKey, signal)),
    )
    if (raw === undefined) return undefined
    return parseIndex(raw, layout.archivePrefixes, pkg.packageKey)
  } catch (error) {
    if (breaker.trip(error, ctx.log) || ctx.signal?.aborted) return undefined
    ctx.log.warning(
      `Cannot use the cache index of ${pkg.pin.identity} (${pkg.indexKey}): ${errorMessage(error)}. Its targets will be built.`,
    )
    problems.push(`${pkg.pin.identity}: ${errorMessage(error)}`)
    return undefined
  }
}

interface Marker {
  /** `<target>\0<Scipio key>` of every framework the producer stored. */
  targets: string[]
  /** The set manifest: every package's index, when the producer wrote one (bucket/set-manifest.ts). */
  indexes?: Map<string, PackageIndex>
}

/** The package's index in every layout read at once, layered: the scope's entries first (bucket/layers.ts). */
async function readLayeredIndex(
  ctx: RestoreContext,
  position: number,
  breaker: Breaker,
  problems: string[],
): Promise<PackageIndex | undefined> {
  const layouts = layoutsOf(ctx)
  const found = await Promise.all(
    layouts.map((layout) => readIndex(ctx, layout.plan.packages[position]!, breaker, problems, layout)),
  )
  return layerIndexes(found)
}

/** The first layout's marker that exists (the scope's before the shared cache's); all are asked at once. */
async function readFirstMarker(ctx: RestoreContext): Promise<Marker | undefined> {
  const markers = await Promise.all(layoutsOf(ctx).map((layout) => readMarker(ctx, layout)))
  return markers.find((marker) => marker !== undefined)
}

async function readMarker(
  ctx: RestoreContext,
  layout: Layout = sharedLayout(ctx.prefix, ctx.plan),
): Promise<Marker | undefined> {
  let raw: unknown
  let targets: string[]
  try {
    raw = await answerWithin(ctx.stallTimeoutMs ?? 60_000, ctx.signal, (signal) =>
      getJson(ctx.storage, layout.plan.completeKey, signal),
    )
    if (raw === undefined) return undefined
    targets = parseCompleteMarker(raw, ctx.plan.setKey).targets.map((t) => `${t.targetName}\0${t.scipioKey}`)
  } catch (error) {
    ctx.log.debug(`No usable completion marker: ${errorMessage(error)}`)
    return undefined
  }
  try {
    const indexes = parseSetManifest(
      raw,
      layout.archivePrefixes,
      ctx.plan.packages.map((p) => p.packageKey),
    )
    return indexes ? { targets, indexes } : { targets }
  } catch (error) {
    ctx.log.debug(`The completion marker's manifest is unusable (${errorMessage(error)}): reading the package indexes.`)
    return { targets }
  }
}

interface RestoreJob {
  pkg: PackagePlan
  entry: IndexEntry
}

/**
 * One job per framework folder, however many indexes list it: two jobs for one folder would race to place it
 * (and one's cleanup could remove what the other placed). Jobs are taken in Package.resolved order, so the
 * first package to list a framework keeps it; a second build of the same folder is left to Scipio.
 */
class FrameworkClaims {
  private readonly byFolder = new Map<string, RestoreJob>()
  constructor(private readonly log: Log) {}

  /** The jobs of `jobs` whose folder no earlier job claimed. */
  take(jobs: RestoreJob[]): RestoreJob[] {
    const taken: RestoreJob[] = []
    for (const job of jobs) {
      const folder = frameworkFolder(job.entry.targetName)
      const first = this.byFolder.get(folder)
      if (!first) {
        this.byFolder.set(folder, job)
        taken.push(job)
      } else if (first.entry.targetName === job.entry.targetName && first.entry.scipioKey === job.entry.scipioKey)
        continue
      else
        this.log.warning(
          `${folder} is listed by the cache indexes of ${first.pkg.pin.identity} (${first.entry.targetName}, key ${first.entry.scipioKey.slice(0, 12)}) ` +
            `and ${job.pkg.pin.identity} (${job.entry.targetName}, key ${job.entry.scipioKey.slice(0, 12)}): restoring the first; Scipio rebuilds it if it is not the one this build needs.`,
        )
    }
    return taken
  }
}

export function onePerFramework(jobs: RestoreJob[], log: Log): RestoreJob[] {
  return new FrameworkClaims(log).take(jobs)
}

function dependencyMiss(miss: DependencyMiss): RestoredTarget {
  return {
    targetName: miss.entry.targetName,
    package: miss.pkg.pin.identity,
    result: 'missed',
    bytes: 0,
    ms: 0,
    reason: miss.reason,
    miss: 'unavailable',
    cause: miss.cause,
  }
}

/** Largest first: the long downloads start early and the small ones fill the gaps. */
const largestFirst = (a: { entry: IndexEntry }, b: { entry: IndexEntry }) => b.entry.size - a.entry.size

/** Removes the staging folders a killed run left in the output folder, before anything else reads it. */
async function sweepStaging(ctx: RestoreContext): Promise<void> {
  const removed = await sweepLeftovers(ctx.outputDirectory)
  if (removed.length > 0)
    ctx.log.info(
      `Removed ${removed.length} staging folders an interrupted run left in ${ctx.outputDirectory}: ${removed.join(', ')}.`,
    )
}

export async function restore(given: RestoreContext): Promise<RestoreOutcome> {
  await fs.mkdir(given.outputDirectory, { recursive: true })
  await sweepStaging(given)
  // A full disk stops this restore's downloads as the time limit or a cancellation does.
  const stop = new AbortController()
  const ctx = { ...given, signal: given.signal ? AbortSignal.any([given.signal, stop.signal]) : stop.signal }
  const space = await DiskSpace.of(ctx.outputDirectory, stop)
  const local = await scanOutput(ctx.outputDirectory)
  const tempRoot = own(path.join(ctx.outputDirectory, stagingFolderName()))
  const indexes = new Map<string, PackageIndex>()
  const packagesMissing: string[] = []
  const problems: string[] = []
  const breaker = new Breaker()
  try {
    const claims = new FrameworkClaims(ctx.log)
    const inFlight = new InFlight(ctx.concurrency)
    const started: { entry: IndexEntry; result: Promise<RestoredTarget> }[] = []
    const decided = new Set<string>()
    const start = (jobs: RestoreJob[]) => {
      for (const { pkg, entry } of claims.take(jobs).sort(largestFirst)) {
        const result = inFlight.run(entry.size, () =>
          restoreTarget(ctx, pkg, entry, local, tempRoot, breaker, space, problems),
        )
        result.catch(() => undefined) // awaited below, once every index is in; never unhandled meanwhile
        started.push({ entry, result })
      }
    }
    // What the indexes in so far decide (choose.ts): the picked entries start, the targets whose dependencies
    // changed are misses without a download. `complete`: no index is still to come.
    const decide = (sources: IndexSource[], complete: boolean) => {
      const choice = chooseEntries(sources, complete, ctx.plan.packages)
      start(choice.picked.filter((p) => !decided.has(p.entry.targetName)))
      for (const miss of choice.missed.filter((m) => !decided.has(m.entry.targetName)))
        started.push({ entry: miss.entry, result: Promise.resolve(dependencyMiss(miss)) })
      for (const { entry } of [...choice.picked, ...choice.missed]) decided.add(entry.targetName)
    }
    // A build marked complete with a manifest needs no index: one request, then the archives.
    const marker = ctx.lookupOnly ? undefined : await readFirstMarker(given)
    if (marker?.indexes) {
      const manifest = marker.indexes
      const sources = ctx.plan.packages.map((pkg) => ({ pkg, index: manifest.get(pkg.packageKey)! }))
      for (const { pkg, index } of sources) indexes.set(pkg.packageKey, index)
      ctx.log.debug(
        `This build is marked complete: its manifest lists ${sources.reduce((n, s) => n + s.index.targets.length, 0)} frameworks.`,
      )
      // The whole size is known before any download: a set that cannot fit is not started at all.
      const toFetch = sources
        .flatMap(({ index }) => index.targets)
        .filter((entry) => local.get(entry.targetName)?.scipioKey !== entry.scipioKey)
      if (!space.enough(toFetch.reduce((sum, entry) => sum + entry.size, 0))) space.trip('check')
      decide(sources, true)
    } else {
      // A package's archives start as soon as its index has arrived, and those of every package before it in
      // Package.resolved (so the first to list a framework keeps it, whatever order the answers come in), unless
      // they wait for a dependency listed by an index still to come.
      const limit = pLimit(indexReadsInFlight(ctx.concurrency))
      const arrived: (IndexSource | null | undefined)[] = ctx.plan.packages.map(() => undefined)
      const prefix: IndexSource[] = []
      let next = 0
      await Promise.all(
        ctx.plan.packages.map((pkg, i) =>
          limit(async () => {
            // Read with the caller's signal: a full disk stops downloads, not the small reads that say what is stored.
            const index = await readLayeredIndex(given, i, breaker, problems)
            if (!index) packagesMissing.push(pkg.pin.identity)
            else indexes.set(pkg.packageKey, index)
            arrived[i] = index ? { pkg, index } : null
            const before = next
            for (; next < arrived.length && arrived[next] !== undefined; next++)
              if (arrived[next]) prefix.push(arrived[next]!)
            if (next > before) decide(prefix, next === arrived.length)
          }),
        ),
      )
    }
    // Reported largest first, in Package.resolved order among equals, whatever order they started in.
    const targets = await Promise.all(started.sort(largestFirst).map((s) => s.result))
    const stopped = targets.filter((t) => t.reason === stoppedMiss(ctx.signal)).length
    if (space.full) {
      const message = space.report(targets.filter((t) => t.result === 'restored').length, stopped)
      ctx.log.warning(message)
      problems.push(message)
    } else if (stopped > 0 || (ctx.signal?.aborted && packagesMissing.length > 0)) {
      const why = stopReason(ctx.signal)
      const then = ctx.signal.reason instanceof CancelledError ? '' : ' and will be built'
      ctx.log.warning(`${why[0]!.toUpperCase()}${why.slice(1)}: ${stopped} frameworks were not restored${then}.`)
      problems.push(why)
    }
    if (breaker.error) problems.push(breaker.error.message)
    const marked = marker?.targets
    const after = await scanOutput(ctx.outputDirectory)
    const complete =
      marked !== undefined &&
      packagesMissing.length === 0 &&
      targets.every((t) => t.result !== 'missed') &&
      marked.every((id) => {
        const [name, key] = id.split('\0')
        return after.get(name!)?.scipioKey === key
      })
    return {
      indexes,
      packagesMissing: packagesMissing.sort(),
      targets,
      complete,
      ...(marker?.indexes ? { fromManifest: true } : {}),
      problems,
    }
  } finally {
    await removeSettled(tempRoot)
    disown(tempRoot)
  }
}

/** What a consumer could not get from the cache: packages with no index, and targets that missed. */
export function cacheMisses(outcome: RestoreOutcome): string[] {
  return [
    ...outcome.packagesMissing.map((p) => `${p} (package)`),
    ...outcome.targets.filter((t) => t.result === 'missed').map((t) => t.targetName),
  ]
}
