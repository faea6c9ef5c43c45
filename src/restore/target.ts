import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { canRead } from '../archive/archive.js'
import { UnsafeArchiveError } from '../archive/guard.js'
import { type IndexEntry } from '../bucket/cache-index.js'
import { CacheTimeoutError, errorMessage, isDiskFull } from '../errors.js'
import { type LocalFramework } from '../keys/frameworks.js'
import { type PackagePlan } from '../keys/keys.js'
import { defaultRetryPolicy, withRetry } from '../retry.js'
import { aarMissReason } from '../interop/scipio-s3-storage.js'
import { AarFormat } from '../bucket/layout.js'
import { type DiskSpace } from './disk-space.js'
import { type Breaker } from './breaker.js'
import { interruptible, scopeOf, type RestoreContext } from './context.js'
import { isRetryableDownload, downloadInto, lookUp, missKindOf } from './download.js'
import { stoppedMiss, type RestoredTarget } from './outcome.js'
import { removeSettled, placeFramework } from './place.js'

/** One target's restore: whether it is needed, the download with its retries, the placement, the miss it becomes. */

/** A miss that says nothing about the stored entry (see MissKind). */
export function unavailable(
  base: Omit<RestoredTarget, 'result' | 'bytes' | 'ms'>,
  ms: number,
  reason: string,
): RestoredTarget {
  return { ...base, result: 'missed', bytes: 0, ms, reason, miss: 'unavailable' }
}

export async function restoreTarget(
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
  // Kept without asking the store: a consumer needs nothing more, and a producer's survey (save/heal.ts) finds
  // the entry's archive gone when it expired.
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
  const transfer = ctx.log.transfer?.('download', entry.targetName, entry.size)
  try {
    await withRetry(
      interruptible(ctx.retry ?? defaultRetryPolicy, ctx.signal),
      isRetryableDownload,
      async (attempt) => {
        // Only a failed attempt can leave writes under way; the first starts from nothing.
        if (attempt > 1) await removeSettled(slot)
        await fs.mkdir(path.join(slot, 'staging'), { recursive: true })
        await downloadInto(ctx, entry, path.join(slot, 'staging'), transfer)
      },
      (error, attempt) =>
        ctx.log.info(`${entry.targetName}: attempt ${attempt} failed (${errorMessage(error)}); retrying`),
    )
    await placeFramework(path.join(slot, 'staging'), ctx.outputDirectory, entry.targetName, path.join(slot, 'previous'))
    placed = true
    transfer?.done(entry.size)
    return { ...base, result: 'restored', bytes: entry.size, ms: Date.now() - started }
  } catch (error) {
    transfer?.failed()
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
