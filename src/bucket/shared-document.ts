import { errorMessage, PreconditionFailedError, StorageError } from '../errors.js'
import type { Log } from '../log.js'
import { backoffDelay, defaultRetryPolicy, type RetryPolicy } from '../retry.js'
import { getJsonVersion, type PutOptions, type Storage } from '../storage/index.js'
import { isRefused } from '../storage/refusals.js'
import { probeObjectKey } from './layout.js'

/**
 * Read-modify-write of a JSON document that several producers update (package indexes, pin records), without
 * losing anyone's update where the store honours conditional writes: the write carries `If-Match` on the ETag
 * read (or `If-None-Match: *` when there was nothing), and a refusal (412, 409) means "someone else wrote
 * first": read again, merge again, write again after a jittered, bounded back-off.
 *
 * A store that ignores the conditions (s3rver, older S3-compatible servers) accepts every write, so a
 * concurrent writer's update can be replaced. There each write is read back once and written again, merged,
 * when this writer's part is missing: that narrows the window, it cannot close it (docs/storage.md).
 */

export interface SharedDocument<T> {
  key: string
  /** Validates what is stored; throws for something this action would not write (it is then replaced). */
  parse(raw: unknown): T
  /** What to store over `stored`; undefined when `stored` already holds this writer's part: nothing to write. */
  merge(stored: T | undefined): T | undefined
  /** The stored form of a value (default: the value itself). */
  toJson?(value: T): unknown
}

export interface SharedWriteContext {
  storage: Storage
  prefix: string
  publicRead: boolean
  log?: Log
  signal?: AbortSignal
  /** Back-off between attempts after a conflict: injectable so tests don't sleep. */
  conflictRetry?: RetryPolicy
}

/** Conflicts clear in the time another producer takes to write one small document: short, jittered waits. */
export const conflictRetryPolicy: RetryPolicy = {
  ...defaultRetryPolicy,
  attempts: 8,
  baseDelayMs: 100,
  maxDelayMs: 2_000,
}

/** A version token no store gives out: a conditional write on it can only succeed where conditions are ignored. */
const impossibleEtag = '"scipio-s3-cache-probe-never-an-etag"'

const probes = new WeakMap<Storage, Map<string, Promise<boolean>>>()

/**
 * Whether the store honours conditional writes, found once per store and prefix by one conditional PUT that
 * cannot succeed where they are honoured (412, or 404 for the absent key) and writes the tiny probe object
 * where they are not. Asked only before the first read-modify-write of a run: an unchanged run never asks.
 */
export function conditionsHonoured(ctx: SharedWriteContext): Promise<boolean> {
  let byPrefix = probes.get(ctx.storage)
  if (!byPrefix) probes.set(ctx.storage, (byPrefix = new Map()))
  let probe = byPrefix.get(ctx.prefix)
  if (!probe) byPrefix.set(ctx.prefix, (probe = runProbe(ctx)))
  return probe
}

async function runProbe(ctx: SharedWriteContext): Promise<boolean> {
  let honoured: boolean
  try {
    await ctx.storage.put(probeObjectKey(ctx.prefix), Buffer.from('probe\n'), {
      contentType: 'text/plain',
      publicRead: ctx.publicRead,
      ifMatch: impossibleEtag,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    })
    honoured = false
  } catch (error) {
    // Any other answer tells nothing: assume the weaker store, which only costs a read-back per write.
    honoured = error instanceof PreconditionFailedError
  }
  if (ctx.storage.conditionsIgnored) honoured = false
  ctx.log?.debug(
    honoured
      ? 'The store honours conditional writes: concurrent producers cannot lose each other’s index or pin-record entries.'
      : 'The store ignores conditional writes (If-Match, If-None-Match): shared documents are read back after each write; a producer running at the very same moment may still replace an entry until the next run.',
  )
  return honoured
}

/** A read of a shared document: whether it existed, its parsed value (if usable) and its ETag. */
export interface SharedRead<T> {
  exists: boolean
  value?: T
  etag?: string
  /** The store refused the read (403): taken as absent, which it is unless these credentials may not read it. */
  refused?: boolean
}

async function readShared<T>(
  ctx: SharedWriteContext,
  doc: SharedDocument<T>,
  maxBytes: number,
): Promise<SharedRead<T>> {
  const read = await getJsonVersion(ctx.storage, doc.key, ctx.signal, maxBytes).catch((error: unknown) => {
    // Refused: absent where missing keys answer 403 (storage/refusals.ts); it is then created, never replaced.
    if (isRefused(error)) return 'refused' as const
    // Too large or not JSON: not ours, so it is replaced; a storage fault propagates.
    if (error instanceof StorageError || ctx.signal?.aborted) throw error
    return { value: undefined, etag: undefined, unusable: true }
  })
  if (read === 'refused') return { exists: false, refused: true }
  if (read === undefined) return { exists: false }
  let value: T | undefined
  try {
    value = 'unusable' in read ? undefined : doc.parse(read.value)
  } catch (error) {
    ctx.log?.debug(`Replacing ${doc.key}: ${errorMessage(error)}`)
  }
  return { exists: true, ...(value !== undefined ? { value } : {}), ...(read.etag ? { etag: read.etag } : {}) }
}

function conditionsFor(read: { exists: boolean; etag?: string }): Pick<PutOptions, 'ifMatch' | 'ifNoneMatch'> {
  if (!read.exists) return { ifNoneMatch: '*' }
  return read.etag ? { ifMatch: read.etag } : {}
}

/**
 * Stores this writer's part of a shared document (see the top of this file). Returns whether it wrote. Throws a
 * storage fault as is, and an Error when the document kept changing for every attempt.
 */
export async function updateShared<T>(
  ctx: SharedWriteContext,
  doc: SharedDocument<T>,
  {
    earlier,
    maxBytes = 16 * 1024 * 1024,
  }: {
    /**
     * The caller's own read of the document, made earlier in the run: the first attempt writes on its ETag
     * instead of reading again, where the store honours conditions (a change since is then a 412, read and
     * merged like any other). Where it ignores them a read that old could undo another producer's write, so it
     * is read again.
     */
    earlier?: SharedRead<T>
    maxBytes?: number
  } = {},
): Promise<boolean> {
  const policy = ctx.conflictRetry ?? conflictRetryPolicy
  let wrote = false
  let hidden = 0
  for (let attempt = 1; ; attempt++) {
    const reuse = attempt === 1 && earlier !== undefined && (await conditionsHonoured(ctx))
    const read = reuse ? earlier : await readShared(ctx, doc, maxBytes)
    const next = doc.merge(read.value)
    if (next === undefined) return wrote
    const honoured = await conditionsHonoured(ctx)
    try {
      await ctx.storage.put(doc.key, Buffer.from(JSON.stringify(doc.toJson ? doc.toJson(next) : next, null, 2)), {
        contentType: 'application/json',
        publicRead: ctx.publicRead,
        ...conditionsFor(read),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      })
      wrote = true
      if (honoured) return true
      // Ignored conditions: the next round reads it back at once and stops when this writer's part is there.
      if (attempt >= policy.attempts) return true
      continue
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error
      // Refused, yet there: another producer may have created it meanwhile (read again), or it is not ours to read.
      if (read.refused && error.status === 412 && ++hidden >= 2)
        throw new StorageError(
          `${doc.key} exists, but these credentials may not read it (403): it cannot be updated`,
          false,
          403,
        )
      ctx.log?.debug(`${doc.key} changed while this producer wrote it (${error.message}); reading it again.`)
    }
    if (attempt >= policy.attempts) throw new Error(`${doc.key} kept changing for ${attempt} attempts`)
    await policy.sleep(backoffDelay(policy, attempt))
  }
}
