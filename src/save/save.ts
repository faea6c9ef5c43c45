import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { pipeline } from 'node:stream/promises'
import pLimit, { type LimitFunction } from 'p-limit'
import { Measure, packArchive } from '../archive/archive.js'
import { ambiguityWarning, attribute, declaredTargets } from './attribution.js'
import {
  indexDocument,
  listsAll,
  mergeIndex,
  newIndex,
  parseIndex,
  type CompleteMarker,
  type IndexEntry,
  type PackageIndex,
  withDependencyKeys,
} from '../bucket/cache-index.js'
import { updateShared, type SharedRead, type SharedWriteContext } from '../bucket/shared-document.js'
import { Formats } from '../constants.js'
import { CacheTimeoutError, DiskFullError, errorMessage, isDiskFull, StorageError, stopReason } from '../errors.js'
import { frameworkFolder, scanOutput, versionFileName, type LocalFramework } from '../keys/frameworks.js'
import { type ArchiveFormat, type KeyPlan, type PackagePlan } from '../keys/keys.js'
import { contentObjectKey, type Layout } from '../bucket/layout.js'
import { layerIndexes } from '../bucket/layers.js'
import type { Log } from '../log.js'
import { entryIsBad, type RestoreOutcome } from '../restore/outcome.js'
import { defaultRetryPolicy, withRetry, type RetryPolicy } from '../retry.js'
import type { ScipioS3StorageObjects } from '../interop/scipio-s3-storage.js'
import { getJsonVersion, putFile, type Storage } from '../storage/index.js'
import { unlessRefused } from '../storage/refusals.js'
import type { PinRecords } from './pin-records.js'
import { manifestDocument } from '../bucket/set-manifest.js'
import { freeBytes, mib } from '../restore/disk-space.js'
import { disown, own, tempFolderPrefix } from '../archive/owned-folders.js'
import { pinRecordObjectKey } from '../bucket/pin-record.js'
import { StoreSurvey } from './heal.js'
import { storeMarker, type ArchiveState, type MarkerDocument } from './marker.js'

export type SaveResultKind = 'uploaded' | 'stored' | 'failed'

export interface SavedTarget {
  targetName: string
  package: string
  result: SaveResultKind
  bytes: number
  ms: number
  reason?: string
}

export interface SaveOutcome {
  targets: SavedTarget[]
  /** Frameworks not indexed: no pin in Package.resolved accounts for them (local packages), or several do. */
  unmatched: string[]
  indexesWritten: number
  /** Package keys whose index is stored after this run (written now, or already the same). */
  indexed?: string[]
  markedComplete: boolean
  /** Cache errors, for `strict`. */
  problems: string[]
}

export interface SaveContext {
  storage: Storage
  plan: KeyPlan
  prefix: string
  outputDirectory: string
  /** The dependencies package: SwiftPM's checkouts there tell which package a framework belongs to. */
  packageDirectory?: string
  publicRead: boolean
  concurrency: number
  format: ArchiveFormat
  /** Only a successful (or skipped) build may mark the set complete or write an index with no targets. */
  buildSucceeded: boolean
  restored?: RestoreOutcome
  log: Log
  /** For uploads that fail on the way (resets, 5xx): injectable so tests don't sleep. */
  retry?: RetryPolicy
  now?: () => Date
  /** Aborts when the cache phase's time limit is reached: what is left is not uploaded. */
  signal?: AbortSignal
  /** `scipio-s3-storage-objects`: adopt and write scipio-s3-storage's `.aar` objects too. */
  scipioS3Storage?: ScipioS3StorageObjects
  /** Build time per target built in this run, recorded in the index entries of new archives. */
  buildMs?: ReadonlyMap<string, number>
  /** Records each package key in its pin's record before the package's index is written. */
  pinRecords?: PinRecords
  /** Back-off after a concurrent producer's write to an index or pin record: injectable so tests don't sleep. */
  conflictRetry?: RetryPolicy
  /**
   * Saving into a scope (`prefix` and `plan` are the scope's): the shared cache, read but never written. What its
   * indexes list counts as stored, and the scope's documents may point at it (bucket/layout.ts).
   */
  shared?: Layout
}

/** The prefixes the archives of this save's documents may live under: its own, and the shared cache's for a scope. */
function archivePrefixes(ctx: SaveContext): readonly string[] {
  return ctx.shared ? [ctx.prefix, ...ctx.shared.archivePrefixes] : [ctx.prefix]
}

/** The shared cache's index of `pkg`, for a save into a scope (what need not be uploaded again). */
async function sharedIndex(ctx: SaveContext, pkg: PackagePlan): Promise<PackageIndex | undefined> {
  const shared = ctx.shared?.plan.packages.find((p) => p.packageKey === pkg.packageKey)
  if (!ctx.shared || !shared) return undefined
  try {
    const read = await getJsonVersion(ctx.storage, shared.indexKey)
    return read === undefined ? undefined : parseIndex(read.value, ctx.shared.archivePrefixes, pkg.packageKey)
  } catch (error) {
    ctx.log.debug(`Ignoring the shared index of ${pkg.pin.identity}: ${errorMessage(error)}`)
    return undefined
  }
}

function buildTimeOf(ctx: SaveContext, targetName: string): { buildMs?: number } {
  const ms = ctx.buildMs?.get(targetName)
  return ms === undefined ? {} : { buildMs: ms }
}

function signalOf(ctx: SaveContext): { signal?: AbortSignal } {
  return ctx.signal ? { signal: ctx.signal } : {}
}

/**
 * Packs the archive into a temporary file first, then uploads the file with its exact length: one PUT per
 * archive instead of a multipart upload of 5 MiB parts held in memory, no second SHA-256 of the body by the
 * SDK (a stream is sent as UNSIGNED-PAYLOAD; our own hash goes in the index), and a failed PUT is retried from
 * the file instead of packing again (docs/benchmarks.md). The object is named by that hash: a concurrent
 * producer's archive of the same target (other bytes: builds are not reproducible) gets another name.
 * Packing is CPU work, uploading is waiting: `packing` lets only one archive per core be compressed at once
 * (each zstd compressor holds about 10 MB), while `concurrency` uploads go on.
 */
async function uploadArchive(
  ctx: SaveContext,
  framework: LocalFramework,
  packing: LimitFunction,
  stopPacking: AbortSignal,
): Promise<IndexEntry> {
  const hash = createHash('sha256')
  const measure = new Measure(hash)
  const temp = own(await fs.mkdtemp(path.join(packingFolder(), tempFolderPrefix('save'))))
  try {
    const file = path.join(temp, 'archive')
    await packing(() =>
      pipeline(
        packArchive(
          ctx.outputDirectory,
          [frameworkFolder(framework.targetName), versionFileName(framework.targetName)],
          ctx.format,
        ),
        measure,
        createWriteStream(file),
        { signal: ctx.signal ? AbortSignal.any([ctx.signal, stopPacking]) : stopPacking },
      ),
    )
    const sha256 = hash.digest('hex')
    const key = contentObjectKey(ctx.prefix, framework.targetName, framework.scipioKey, sha256, ctx.format)
    const transfer = ctx.log.transfer?.('upload', framework.targetName, measure.bytes)
    try {
      await withRetry(ctx.retry ?? defaultRetryPolicy, isRetryableUpload, () =>
        putFile(
          ctx.storage,
          key,
          file,
          {
            contentType: 'application/octet-stream',
            publicRead: ctx.publicRead,
            size: measure.bytes,
            ...signalOf(ctx),
          },
          transfer && ((bytes) => transfer.moved(bytes)),
        ),
      )
    } catch (error) {
      transfer?.failed()
      throw error
    }
    transfer?.done(measure.bytes)
    return {
      targetName: framework.targetName,
      scipioKey: framework.scipioKey,
      format: ctx.format,
      key,
      size: measure.bytes,
      sha256,
      ...buildTimeOf(ctx, framework.targetName),
    }
  } finally {
    await fs.rm(temp, { recursive: true, force: true })
    disown(temp)
  }
}

/** Where archives are packed before their upload: RUNNER_TEMP, or the system's temporary folder. */
function packingFolder(): string {
  return process.env.RUNNER_TEMP || os.tmpdir()
}

/** The one warning a full disk while packing gives: the folder, its free space, and what was not uploaded. */
async function fullDiskWarning(notUploaded: number): Promise<string> {
  const folder = packingFolder()
  const bytes = await freeBytes(folder)
  const free = bytes === undefined ? 'an unknown amount' : mib(bytes)
  return (
    `The disk is full (no space left on device) in ${folder}, where archives are packed before they are uploaded: ` +
    `${free} free. Packing stopped at once: ${notUploaded} frameworks were not uploaded (the next producer run ` +
    'uploads them; the build is not affected). Free some space on that disk, or point RUNNER_TEMP at a larger one.'
  )
}

function isRetryableUpload(error: unknown): boolean {
  return error instanceof StorageError && error.retryable && !error.fatal
}

/** The package's stored index, as the restore read it or read now; a read made here is kept in `reads` for writeIndex. */
async function existingIndex(
  ctx: SaveContext,
  pkg: PackagePlan,
  reads: Map<string, SharedRead<PackageIndex>>,
): Promise<PackageIndex | undefined> {
  const known = ctx.restored?.indexes.get(pkg.packageKey)
  if (known) return known
  if (!ctx.shared) return ownIndex(ctx, pkg, reads)
  // In a scope: the scope's entries first, then the shared cache's (as the restore layers them).
  const [own, shared] = await Promise.all([ownIndex(ctx, pkg, reads), sharedIndex(ctx, pkg)])
  return layerIndexes([own, shared])
}

/** The package's index in the layout this save writes; the read is kept in `reads` for writeIndex. */
async function ownIndex(
  ctx: SaveContext,
  pkg: PackagePlan,
  reads: Map<string, SharedRead<PackageIndex>>,
): Promise<PackageIndex | undefined> {
  try {
    // Refused (no s3:ListBucket): absent, as the restore reads it; writeIndex then creates it (If-None-Match: *).
    const read = await unlessRefused(() => getJsonVersion(ctx.storage, pkg.indexKey))
    if (read === undefined) {
      reads.set(pkg.packageKey, { exists: false })
      return undefined
    }
    const index = parseIndex(read.value, archivePrefixes(ctx), pkg.packageKey)
    reads.set(pkg.packageKey, { exists: true, value: index, ...(read.etag ? { etag: read.etag } : {}) })
    return index
  } catch (error) {
    ctx.log.debug(`Ignoring the stored index of ${pkg.pin.identity}: ${errorMessage(error)}`)
    return undefined
  }
}

/**
 * Whether this run's restore found the archive at `key` absent or damaged: it must be replaced, not trusted. A
 * miss for any other reason (the time limit, a transient fault) says nothing about the entry (MissKind).
 */
function damagedNow(ctx: SaveContext, key: string): boolean {
  return badNow(ctx, key) !== undefined
}

/** What this run's restore found of the archive at `key`: absent (gone), damaged, or nothing against it. */
function badNow(ctx: SaveContext, key: string): ArchiveState {
  const target = ctx.restored?.targets.find((t) => t.entry?.key === key && entryIsBad(t))
  if (!target) return undefined
  return target.miss === 'damaged' ? 'damaged' : 'gone'
}

/**
 * The stored index's entry for this framework, reused without a request of its own: an entry's object is
 * stored before the index that lists it and never replaced by other bytes, so listed means there, unless it
 * expired or was deleted since, which the listing of the prefix tells (heal.ts).
 */
async function storedEntry(
  ctx: SaveContext,
  framework: LocalFramework,
  index: PackageIndex | undefined,
  survey: StoreSurvey,
): Promise<IndexEntry | undefined> {
  const entry = index?.targets.find((t) => t.targetName === framework.targetName && t.scipioKey === framework.scipioKey)
  if (!entry || damagedNow(ctx, entry.key)) return undefined
  return (await survey.isGone(entry.key)) ? undefined : entry
}

/**
 * Whether the package's stored index, under this very package key, lists a target this output folder does not have:
 * the folder is then not a complete build of the package (whatever the build's outcome says), so the set is not
 * marked complete on its account.
 */
function lacksStoredTarget(index: PackageIndex | undefined, frameworks: readonly LocalFramework[]): boolean {
  const here = new Set(frameworks.map((f) => f.targetName))
  return index?.targets.some((t) => !here.has(t.targetName)) ?? false
}

/**
 * Whether the listing lacks every index the package's entries were read from (a set restored from its manifest
 * read none): its own layout's, and for a scope the shared cache's too. Such an index is written again.
 */
async function indexVanished(ctx: SaveContext, pkg: PackagePlan, survey: StoreSurvey): Promise<boolean> {
  if (!(await survey.unlisted(pkg.indexKey))) return false
  const shared = ctx.shared?.plan.packages.find((p) => p.packageKey === pkg.packageKey)
  return shared === undefined || (await survey.unlisted(shared.indexKey))
}

function sharedWriteContext(ctx: SaveContext): SharedWriteContext {
  return {
    storage: ctx.storage,
    prefix: ctx.prefix,
    publicRead: ctx.publicRead,
    log: ctx.log,
    ...signalOf(ctx),
    ...(ctx.conflictRetry ? { conflictRetry: ctx.conflictRetry } : {}),
  }
}

/**
 * Stores the package's index with this run's entries merged into what is stored (with its ETag): another
 * producer's targets are kept, and a conflicting write makes it read, merge and write again. `earlier` is this
 * run's own read of it, which saves reading it again where the store honours conditions (shared-document.ts).
 * Returns whether it wrote (false: the stored index already listed everything).
 */
function writeIndex(
  ctx: SaveContext,
  pkg: PackagePlan,
  index: PackageIndex,
  earlier: SharedRead<PackageIndex> | undefined,
  replace: (key: string) => boolean,
): Promise<boolean> {
  return updateShared(
    sharedWriteContext(ctx),
    {
      key: pkg.indexKey,
      parse: (raw) => parseIndex(raw, archivePrefixes(ctx), pkg.packageKey),
      merge: (stored) => mergeIndex(stored, index, (entry) => replace(entry.key)),
      toJson: indexDocument,
    },
    earlier ? { earlier } : {},
  )
}

/**
 * Marks the set complete. Where the listing ran, or the restore met an archive that is absent or damaged, the
 * stored marker is read and replaced when its manifest names an archive that is gone (marker.ts); otherwise it
 * is created once, as before.
 */
async function markComplete(ctx: SaveContext, marker: MarkerDocument, survey: StoreSurvey): Promise<void> {
  const check = (await survey.knows()) || (ctx.restored?.targets.some(entryIsBad) ?? false)
  const state = async (key: string): Promise<ArchiveState> =>
    badNow(ctx, key) ?? (survey.foundGone(key) || (await survey.isGone(key)) ? 'gone' : undefined)
  await storeMarker(
    {
      ...sharedWriteContext(ctx),
      key: ctx.plan.completeKey,
      setKey: ctx.plan.setKey,
      archivePrefixes: archivePrefixes(ctx),
    },
    marker,
    check ? state : undefined,
  )
}

export async function save(ctx: SaveContext): Promise<SaveOutcome> {
  // Even a set restored whole from its manifest is surveyed: frameworks that were already in place (a persistent
  // output folder) were kept without asking the store, and an archive the manifest names may have expired since.
  const now = ctx.now ?? (() => new Date())
  // One listing of the prefix, under way while the indexes are read: what expired is stored again (heal.ts).
  // A scope's documents may name the shared cache's archives: list the whole cache, its scopes included.
  const listed = ctx.shared?.prefix ?? ctx.prefix
  const survey = StoreSurvey.start({ storage: ctx.storage, prefix: listed, log: ctx.log, ...signalOf(ctx) })
  const replace = (key: string) => damagedNow(ctx, key) || survey.foundGone(key)
  const local = await scanOutput(ctx.outputDirectory)
  const previous = new Map<string, Promise<PackageIndex | undefined>>()
  const reads = new Map<string, SharedRead<PackageIndex>>()
  const previousIndex = (pkg: PackagePlan) => {
    if (!previous.has(pkg.packageKey)) previous.set(pkg.packageKey, existingIndex(ctx, pkg, reads))
    return previous.get(pkg.packageKey)!
  }
  let declared: Promise<Map<string, Set<string>>> | undefined
  const declaredOnce = () =>
    (declared ??= ctx.packageDirectory ? declaredTargets(ctx.packageDirectory) : Promise.resolve(new Map()))
  const attribution = await attribute([...local.values()], ctx.plan, { declared: declaredOnce, previousIndex })
  for (const ambiguous of attribution.ambiguous) ctx.log.warning(ambiguityWarning(ambiguous))
  const unmatched = [...attribution.unmatched, ...attribution.ambiguous.map((a) => a.targetName)].sort()
  const byPackage = new Map<string, LocalFramework[]>(ctx.plan.packages.map((p) => [p.packageKey, []]))
  for (const framework of local.values()) {
    const owner = attribution.owners.get(framework.targetName)
    if (owner) byPackage.get(owner.packageKey)!.push(framework)
  }

  const limit = pLimit(ctx.concurrency)
  const packing = pLimit(Math.max(1, Math.min(ctx.concurrency, os.availableParallelism())))
  const results: SavedTarget[] = []
  let indexesWritten = 0
  const indexed: string[] = []
  /** The index each package has in the bucket after this run: the marker's manifest. */
  const storedIndexes = new Map<string, PackageIndex>()
  let allIndexed = true
  const problems: string[] = []
  let fatal: StorageError | undefined
  // A full disk while packing stops every packing at once, in flight or not started, with one warning at the end;
  // frameworks already stored are still indexed.
  const stopPacking = new AbortController()
  let diskFull: DiskFullError | undefined
  const fullDisk = (error: unknown): boolean => {
    if (isDiskFull(error) && !ctx.signal?.aborted && !diskFull) {
      diskFull = new DiskFullError(`the disk of ${packingFolder()} is full`)
      stopPacking.abort(diskFull)
    }
    const stopped = error === diskFull || (error as Error | undefined)?.name === 'AbortError'
    return diskFull !== undefined && (isDiskFull(error) || stopped) && !ctx.signal?.aborted
  }
  const note = (error: unknown, what: string): string => {
    const reason = ctx.signal?.aborted ? stopReason(ctx.signal) : errorMessage(error)
    if (error instanceof StorageError && error.fatal) {
      if (!fatal) ctx.log.warning(`Uploading to the cache is impossible: ${reason}`)
      fatal ??= error
    } else {
      ctx.log.warning(`Could not upload ${what}: ${reason}`)
      problems.push(`${what}: ${reason}`)
    }
    return reason
  }

  const storeFramework = async (
    pkg: PackagePlan,
    framework: LocalFramework,
    before: PackageIndex | undefined,
  ): Promise<IndexEntry | undefined> => {
    const started = Date.now()
    const base = { targetName: framework.targetName, package: pkg.pin.identity }
    try {
      if (fatal) throw fatal
      if (ctx.signal?.aborted) throw new CacheTimeoutError()
      const stored =
        (await storedEntry(ctx, framework, before, survey)) ?? (await ctx.scipioS3Storage?.adopt(framework, replace))
      if (stored) {
        await ctx.scipioS3Storage?.mirror(framework, stored)
        results.push({ ...base, result: 'stored', bytes: 0, ms: Date.now() - started })
        return stored
      }
      if (diskFull) throw diskFull
      const entry = await uploadArchive(ctx, framework, packing, stopPacking.signal)
      await ctx.scipioS3Storage?.mirror(framework, entry)
      results.push({ ...base, result: 'uploaded', bytes: entry.size, ms: Date.now() - started })
      return entry
    } catch (error) {
      if (fullDisk(error)) {
        results.push({ ...base, result: 'failed', bytes: 0, ms: Date.now() - started, reason: 'disk full' })
        return undefined
      }
      const reason =
        fatal && error === fatal ? fatal.message : note(error, `${framework.targetName} (${pkg.pin.identity})`)
      results.push({ ...base, result: 'failed', bytes: 0, ms: Date.now() - started, reason })
      return undefined
    }
  }

  await Promise.all(
    ctx.plan.packages.map(async (pkg) => {
      const frameworks = byPackage.get(pkg.packageKey) ?? []
      const before = await limit(() => previousIndex(pkg))
      const entries = await Promise.all(
        frameworks.map((framework) =>
          limit(() => storeFramework(pkg, framework, before)).then(
            (entry) => entry && withDependencyKeys(entry, framework, (dep) => attribution.owners.get(dep)?.pin),
          ),
        ),
      )
      const stored = entries.filter((e): e is IndexEntry => e !== undefined)
      if (stored.length < frameworks.length || lacksStoredTarget(before, frameworks)) allIndexed = false
      // Every framework is listed already (objects that are never replaced): no index to touch, and the pin record
      // only when the listing found it expired.
      if (
        stored.length === frameworks.length &&
        listsAll(before, stored, (e) => replace(e.key)) &&
        !(await indexVanished(ctx, pkg, survey))
      ) {
        if (await survey.unlisted(pinRecordObjectKey(ctx.prefix, pkg.pin))) await ctx.pinRecords?.record(pkg)
        indexed.push(pkg.packageKey)
        // The manifest holds this run's entries only: the stored index may hold other dependency contexts too.
        storedIndexes.set(pkg.packageKey, {
          ...before!,
          targets: newIndex(pkg.packageKey, pkg.pin, stored, now()).targets,
        })
        return
      }
      // An empty index says "this package yields no frameworks": only a complete build may claim that.
      if (stored.length === 0 && (frameworks.length > 0 || !ctx.buildSucceeded)) return
      if (fatal || ctx.signal?.aborted) {
        allIndexed = false
        return
      }
      // The pin record first: a stored index then implies a recorded key, and an unchanged run reads no record.
      await ctx.pinRecords?.record(pkg)
      try {
        // Written only now, after every archive it lists is stored.
        // The manifest lists this producer's own entries: each names an object stored before it and never replaced,
        // whatever the merge kept in the shared index.
        const index = newIndex(pkg.packageKey, pkg.pin, stored, now())
        if (await writeIndex(ctx, pkg, index, reads.get(pkg.packageKey), replace)) indexesWritten += 1
        indexed.push(pkg.packageKey)
        storedIndexes.set(pkg.packageKey, index)
      } catch (error) {
        allIndexed = false
        note(error, `the cache index of ${pkg.pin.identity}`)
      }
    }),
  )

  let markedComplete = false
  // A framework in no index (unmatched or ambiguous) must still come from Scipio: a consumer may skip Scipio only
  // when the cache holds everything, so such a set is never marked complete.
  if (
    ctx.buildSucceeded &&
    allIndexed &&
    unmatched.length === 0 &&
    !fatal &&
    !ctx.signal?.aborted &&
    // A set restored complete is marked already: its marker is looked at again only when this run stored an
    // archive again (one its manifest may name as gone).
    (!ctx.restored?.complete || results.some((r) => r.result === 'uploaded'))
  ) {
    const marker: CompleteMarker = {
      schema: Formats.complete,
      setKey: ctx.plan.setKey,
      createdAt: now().toISOString(),
      targets: [...local.values()]
        .map((f) => ({ targetName: f.targetName, scipioKey: f.scipioKey }))
        .sort((a, b) => (a.targetName < b.targetName ? -1 : 1)),
    }
    const manifest = ctx.plan.packages.map((p) => storedIndexes.get(p.packageKey))
    const document = manifest.every((index) => index !== undefined)
      ? { ...marker, packages: manifestDocument(manifest) }
      : marker
    try {
      await markComplete(ctx, document, survey)
      markedComplete = true
    } catch (error) {
      note(error, 'the completion marker')
    }
  }
  ctx.pinRecords?.finish()
  if (diskFull) {
    const warning = await fullDiskWarning(results.filter((r) => r.reason === 'disk full').length)
    ctx.log.warning(warning)
    problems.push(warning)
  }
  if (fatal) problems.push(fatal.message)
  if (ctx.scipioS3Storage) {
    ctx.log.info(ctx.scipioS3Storage.summary())
    problems.push(...ctx.scipioS3Storage.problems)
  }
  if (ctx.signal?.aborted) problems.push(stopReason(ctx.signal))
  results.sort((a, b) => (a.targetName < b.targetName ? -1 : 1))
  return { targets: results, unmatched, indexesWritten, indexed, markedComplete, problems }
}
