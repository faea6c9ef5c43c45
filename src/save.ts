import { createHash } from 'node:crypto'
import { PassThrough } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pLimit from 'p-limit'
import { Measure, packArchive } from './archive.js'
import { newIndex, parseIndex, sameTargets, type CompleteMarker, type IndexEntry, type PackageIndex } from './cache-index.js'
import { Formats } from './constants.js'
import { CacheTimeoutError, errorMessage, StorageError } from './errors.js'
import { frameworkFolder, scanOutput, versionFileName, type LocalFramework } from './frameworks.js'
import { archiveObjectKey, type ArchiveFormat, type KeyPlan, type PackagePlan } from './keys.js'
import type { Log } from './log.js'
import type { RestoreOutcome } from './restore.js'
import { getJson, type Storage } from './storage/index.js'

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
  /** Frameworks with a VersionFile that no pin in Package.resolved accounts for (local packages). */
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
  publicRead: boolean
  concurrency: number
  format: ArchiveFormat
  /** Only a successful (or skipped) build may mark the set complete or write an index with no targets. */
  buildSucceeded: boolean
  restored?: RestoreOutcome
  log: Log
  now?: () => Date
  /** Aborts when the cache phase's time limit is reached: what is left is not uploaded. */
  signal?: AbortSignal
  /** Build time per target built in this run, recorded in the index entries of new archives. */
  buildMs?: ReadonlyMap<string, number>
}

function buildTimeOf(ctx: SaveContext, targetName: string): { buildMs?: number } {
  const ms = ctx.buildMs?.get(targetName)
  return ms === undefined ? {} : { buildMs: ms }
}

/** A VersionFile names its pin (revision, version) but not its package: Package.resolved links the two. */
export function packagesOf(framework: LocalFramework, plan: KeyPlan): PackagePlan[] {
  const { revision, version } = framework.pin
  if (revision) return plan.packages.filter((p) => p.pin.revision === revision)
  if (version) return plan.packages.filter((p) => !p.pin.revision && p.pin.version === version)
  return []
}

function signalOf(ctx: SaveContext): { signal?: AbortSignal } {
  return ctx.signal ? { signal: ctx.signal } : {}
}

async function uploadArchive(ctx: SaveContext, framework: LocalFramework): Promise<IndexEntry> {
  const key = archiveObjectKey(ctx.prefix, framework.targetName, framework.scipioKey, ctx.format)
  const hash = createHash('sha256')
  const measure = new Measure(hash)
  const body = new PassThrough()
  const packing = pipeline(packArchive(ctx.outputDirectory, [frameworkFolder(framework.targetName), versionFileName(framework.targetName)], ctx.format), measure, body)
  const sending = ctx.storage.put(key, body, { contentType: 'application/octet-stream', publicRead: ctx.publicRead, ...signalOf(ctx) }).catch((error: unknown) => {
    body.destroy(error as Error) // stops the packer instead of leaving it blocked on a reader that is gone
    throw error
  })
  await Promise.all([packing, sending])
  return { targetName: framework.targetName, scipioKey: framework.scipioKey, format: ctx.format, key, size: measure.bytes, sha256: hash.digest('hex'), ...buildTimeOf(ctx, framework.targetName) }
}

async function existingIndex(ctx: SaveContext, pkg: PackagePlan): Promise<PackageIndex | undefined> {
  const known = ctx.restored?.indexes.get(pkg.packageKey)
  if (known) return known
  try {
    const raw = await getJson(ctx.storage, pkg.indexKey)
    return raw === undefined ? undefined : parseIndex(raw, ctx.prefix, pkg.packageKey)
  } catch (error) {
    ctx.log.debug(`Ignoring the stored index of ${pkg.pin.identity}: ${errorMessage(error)}`)
    return undefined
  }
}

/** Whether this run's restore found the archive at `key` damaged: it must be replaced, not trusted. */
function damagedNow(ctx: SaveContext, key: string): boolean {
  return ctx.restored?.targets.some((t) => t.result === 'missed' && t.entry?.key === key) ?? false
}

/** Reuses a stored archive when the index lists it and it is still there (restored this run, or answered by HEAD). */
async function storedEntry(ctx: SaveContext, framework: LocalFramework, index: PackageIndex | undefined): Promise<IndexEntry | undefined> {
  const entry = index?.targets.find((t) => t.targetName === framework.targetName && t.scipioKey === framework.scipioKey)
  if (!entry || damagedNow(ctx, entry.key)) return undefined
  const restoredNow = ctx.restored?.targets.some((t) => t.result === 'restored' && t.entry?.key === entry.key)
  if (restoredNow) return entry
  const head = await ctx.storage.head(entry.key)
  return head && head.size === entry.size ? entry : undefined
}

/**
 * An archive already stored under this Scipio key by another index (another salt or package key, or a producer
 * running at the same time) is adopted, hashed as it is, rather than overwritten: overwriting would change the
 * bytes under the other index and turn its consumers' restores into misses.
 */
async function adoptExisting(ctx: SaveContext, framework: LocalFramework): Promise<IndexEntry | undefined> {
  const key = archiveObjectKey(ctx.prefix, framework.targetName, framework.scipioKey, ctx.format)
  if (damagedNow(ctx, key) || !(await ctx.storage.head(key))) return undefined
  const object = await ctx.storage.get(key, ctx.signal)
  if (!object) return undefined
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of object.body) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return { targetName: framework.targetName, scipioKey: framework.scipioKey, format: ctx.format, key, size, sha256: hash.digest('hex'), ...buildTimeOf(ctx, framework.targetName) }
}

export async function save(ctx: SaveContext): Promise<SaveOutcome> {
  const now = ctx.now ?? (() => new Date())
  const local = await scanOutput(ctx.outputDirectory)
  const byPackage = new Map<string, LocalFramework[]>(ctx.plan.packages.map((p) => [p.packageKey, []]))
  const unmatched: string[] = []
  for (const framework of local.values()) {
    const owners = packagesOf(framework, ctx.plan)
    if (owners.length === 0) unmatched.push(framework.targetName)
    for (const owner of owners) byPackage.get(owner.packageKey)!.push(framework)
  }

  const limit = pLimit(ctx.concurrency)
  const results: SavedTarget[] = []
  let indexesWritten = 0
  const indexed: string[] = []
  let allIndexed = true
  const problems: string[] = []
  let fatal: StorageError | undefined
  const note = (error: unknown, what: string): string => {
    const reason = ctx.signal?.aborted ? 'the cache time limit was reached' : errorMessage(error)
    if (error instanceof StorageError && error.fatal) {
      if (!fatal) ctx.log.warning(`Uploading to the cache is impossible: ${reason}`)
      fatal ??= error
    } else {
      ctx.log.warning(`Could not upload ${what}: ${reason}`)
      problems.push(`${what}: ${reason}`)
    }
    return reason
  }
  const uploads = new Map<string, Promise<IndexEntry>>() // one upload per archive, even if two pins share a revision

  await Promise.all(
    ctx.plan.packages.map(async (pkg) => {
      const frameworks = byPackage.get(pkg.packageKey) ?? []
      const previous = await limit(() => existingIndex(ctx, pkg))
      const entries = await Promise.all(
        frameworks.map((framework) =>
          limit(async (): Promise<IndexEntry | undefined> => {
            const started = Date.now()
            const base = { targetName: framework.targetName, package: pkg.pin.identity }
            try {
              if (fatal) throw fatal
              if (ctx.signal?.aborted) throw new CacheTimeoutError()
              const stored = (await storedEntry(ctx, framework, previous)) ?? (await adoptExisting(ctx, framework))
              if (stored) {
                results.push({ ...base, result: 'stored', bytes: 0, ms: Date.now() - started })
                return stored
              }
              const id = `${framework.targetName}\0${framework.scipioKey}`
              let upload = uploads.get(id)
              const first = !upload
              if (!upload) uploads.set(id, (upload = uploadArchive(ctx, framework)))
              const entry = await upload
              results.push({ ...base, result: first ? 'uploaded' : 'stored', bytes: first ? entry.size : 0, ms: Date.now() - started })
              return entry
            } catch (error) {
              const reason = fatal && error === fatal ? fatal.message : note(error, `${framework.targetName} (${pkg.pin.identity})`)
              results.push({ ...base, result: 'failed', bytes: 0, ms: Date.now() - started, reason })
              return undefined
            }
          }),
        ),
      )
      const stored = entries.filter((e): e is IndexEntry => e !== undefined)
      if (stored.length < frameworks.length) allIndexed = false
      // An empty index says "this package yields no frameworks": only a complete build may claim that.
      if (stored.length === 0 && (frameworks.length > 0 || !ctx.buildSucceeded)) return
      const index = newIndex(pkg.packageKey, pkg.pin, stored, now())
      if (sameTargets(previous, index)) {
        indexed.push(pkg.packageKey)
        return
      }
      if (fatal || ctx.signal?.aborted) {
        allIndexed = false
        return
      }
      try {
        // Written only now, after every archive it lists is stored.
        await ctx.storage.put(pkg.indexKey, Buffer.from(JSON.stringify(index, null, 2)), { contentType: 'application/json', publicRead: ctx.publicRead, ...signalOf(ctx) })
        indexesWritten += 1
        indexed.push(pkg.packageKey)
      } catch (error) {
        allIndexed = false
        note(error, `the cache index of ${pkg.pin.identity}`)
      }
    }),
  )

  let markedComplete = false
  if (ctx.buildSucceeded && allIndexed && !fatal && !ctx.signal?.aborted && !ctx.restored?.complete) {
    const marker: CompleteMarker = {
      schema: Formats.complete,
      setKey: ctx.plan.setKey,
      createdAt: now().toISOString(),
      targets: [...local.values()]
        .filter((f) => !unmatched.includes(f.targetName))
        .map((f) => ({ targetName: f.targetName, scipioKey: f.scipioKey }))
        .sort((a, b) => (a.targetName < b.targetName ? -1 : 1)),
    }
    try {
      await ctx.storage.put(ctx.plan.completeKey, Buffer.from(JSON.stringify(marker, null, 2)), { contentType: 'application/json', publicRead: ctx.publicRead, ...signalOf(ctx) })
      markedComplete = true
    } catch (error) {
      note(error, 'the completion marker')
    }
  }
  if (fatal) problems.push(fatal.message)
  if (ctx.signal?.aborted) problems.push('the cache time limit was reached')
  results.sort((a, b) => (a.targetName < b.targetName ? -1 : 1))
  return { targets: results, unmatched: unmatched.sort(), indexesWritten, indexed, markedComplete, problems }
}

