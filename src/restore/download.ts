import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { CorruptArchiveError, defaultExtractLimits, UnsafeArchiveError } from '../archive/guard.js'
import { type IndexEntry } from '../bucket/cache-index.js'
import { extractor, type Extracted, type ExtractSpec } from '../archive/extract-pool.js'
import { CacheTimeoutError, isDiskFull, MissingObjectError, StorageError } from '../errors.js'
import { frameworkFolder, versionFileName } from '../keys/frameworks.js'
import { scipioKey } from '../keys/keys.js'
import { restoreAppleArchive } from '../interop/scipio-s3-storage.js'
import { AarFormat } from '../bucket/layout.js'
import { StallWatch } from '../archive/stall-watch.js'
import { countBytes, type Storage } from '../storage/index.js'
import type { Transfer } from '../log.js'
import { PlainGetError, StallError } from '../storage/plain-get.js'
import { answerOf, isRefused } from '../storage/refusals.js'
import { type RestoreContext, answerWithin } from './context.js'
import { type MissKind, type RestoredTarget } from './outcome.js'

/** One archive's download into a staging folder, and the checks that it holds what its index entry records. */

class IntegrityError extends Error {
  override name = 'IntegrityError'
}

export function isRetryableDownload(error: unknown): boolean {
  if (error instanceof UnsafeArchiveError || error instanceof CacheTimeoutError || isDiskFull(error)) return false
  if (error instanceof StorageError) return error.retryable && !error.fatal
  return true // resets, truncation, stalls, corrupted bytes: a fresh attempt may succeed
}

function stallWatch(stallMs: number): StallWatch {
  return new StallWatch(stallMs, () => new StallError(`no data for ${Math.round(stallMs / 1000)} s`))
}

/**
 * `transfer` hears the bytes as this thread receives them; an archive an extraction thread downloads itself
 * (Storage.direct) is reported when it is in, whole.
 */
export async function downloadInto(
  ctx: RestoreContext,
  entry: IndexEntry,
  staging: string,
  transfer?: Transfer,
): Promise<void> {
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
    : await fetchThroughMainThread(ctx, entry, spec, transfer)
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
async function fetchThroughMainThread(
  ctx: RestoreContext,
  entry: IndexEntry,
  spec: ExtractSpec,
  transfer: Transfer | undefined,
): Promise<Extracted> {
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
    const stages = [
      stallWatch(ctx.stallTimeoutMs ?? 60_000),
      ...(transfer ? [countBytes((n) => transfer.moved(n))] : []),
    ]
    return await extractor(ctx.concurrency).extract(object.body, stages, spec)
  } finally {
    ctx.signal?.removeEventListener('abort', abort)
  }
}

export async function lookUp(
  ctx: RestoreContext,
  entry: IndexEntry,
  base: Omit<RestoredTarget, 'result' | 'bytes' | 'ms'>,
): Promise<RestoredTarget> {
  const answer = await answerOf(() => ctx.storage.head(entry.key))
  const head = answer.refused ? undefined : answer.value
  if (head && head.size === entry.size) return { ...base, result: 'available', bytes: 0, ms: 0 }
  const gone = answer.refused
    ? 'archive listed in the index is not stored, or not readable with these credentials (403)'
    : 'archive listed in the index is missing'
  return {
    ...base,
    result: 'missed',
    bytes: 0,
    ms: 0,
    reason: head ? 'stored archive has another size than the index records' : gone,
    miss: head ? 'damaged' : 'absent',
  }
}

/**
 * What a failed download says about the stored entry: only a 404 (or a 403 where the store hides missing keys: an
 * expired archive answers so) or bytes that fail a check condemn it.
 */
export function missKindOf(error: unknown): MissKind {
  if (error instanceof MissingObjectError || isRefused(error)) return 'absent'
  if (error instanceof UnsafeArchiveError || error instanceof IntegrityError || error instanceof CorruptArchiveError)
    return 'damaged'
  return 'unavailable'
}
