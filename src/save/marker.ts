import { parseCompleteMarker, type CompleteMarker } from '../bucket/cache-index.js'
import { manifestArchiveKeys } from '../bucket/set-manifest.js'
import { updateShared, type SharedRead, type SharedWriteContext } from '../bucket/shared-document.js'
import { errorMessage, PreconditionFailedError, StorageError } from '../errors.js'
import { getJsonVersion } from '../storage/index.js'
import { isRefused } from '../storage/refusals.js'

/**
 * The completion marker of a set, with its manifest (bucket/set-manifest.ts). It is created once; a stored marker
 * is replaced only when its manifest names an archive that is gone or damaged (`check`), so that consumers, who
 * follow the manifest and read no index, get the healed entry instead of missing it for as long as the set lives.
 * The replacement carries `If-Match` on the ETag read (merged like an index where another producer replaced it
 * first); where the store ignores conditions it is read back once.
 */

export type MarkerDocument = CompleteMarker & { packages?: Record<string, unknown>[] }

export interface MarkerContext extends SharedWriteContext {
  key: string
  setKey: string
  /** Where the archives a stored manifest names may live (default: `prefix`); a scope's include the shared cache's. */
  archivePrefixes?: readonly string[]
}

/** Today's cheap path, for a run that knows of nothing gone: one create-only PUT; a 412 means already marked. */
async function createOnce(ctx: MarkerContext, marker: MarkerDocument): Promise<void> {
  try {
    await ctx.storage.put(ctx.key, Buffer.from(JSON.stringify(marker, null, 2)), {
      contentType: 'application/json',
      publicRead: ctx.publicRead,
      ifNoneMatch: '*',
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    })
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error
    ctx.log?.debug(`The set is already marked complete (${error.message}).`)
  }
}

async function readMarker(ctx: MarkerContext): Promise<SharedRead<Record<string, unknown>>> {
  let read
  try {
    read = await getJsonVersion(ctx.storage, ctx.key, ctx.signal)
  } catch (error) {
    if (isRefused(error)) return { exists: false, refused: true } // absent where missing keys answer 403
    if (error instanceof StorageError || ctx.signal?.aborted) throw error
    return { exists: true } // not a marker this action wrote: replaced
  }
  if (read === undefined) return { exists: false }
  const etag = read.etag ? { etag: read.etag } : {}
  try {
    parseCompleteMarker(read.value, ctx.setKey)
    return { exists: true, value: read.value as Record<string, unknown>, ...etag }
  } catch (error) {
    ctx.log?.debug(`Replacing the completion marker: ${errorMessage(error)}`)
    return { exists: true, ...etag }
  }
}

/** What a check found of an archive a stored marker names: gone (expired, deleted), damaged, or fine (undefined). */
export type ArchiveState = 'gone' | 'damaged' | undefined

/** The archives a stored marker's manifest names that `check` finds gone or damaged, counted by state. */
async function badArchives(
  named: readonly string[],
  check: (key: string) => Promise<ArchiveState>,
): Promise<Map<string, 'gone' | 'damaged'>> {
  const bad = new Map<string, 'gone' | 'damaged'>()
  for (const [i, state] of (await Promise.all(named.map(check))).entries()) if (state) bad.set(named[i]!, state)
  return bad
}

/** "names 1 archive that is gone and 2 that are damaged", for the log line of a replacement. */
export function describeBad(bad: ReadonlyMap<string, 'gone' | 'damaged'>): string {
  const count = (state: 'gone' | 'damaged') => [...bad.values()].filter((s) => s === state).length
  const phrase = (n: number, state: string, first: boolean) =>
    `${n} ${first ? (n === 1 ? 'archive ' : 'archives ') : ''}that ${n === 1 ? 'is' : 'are'} ${state}`
  const parts = [
    ...(count('gone') ? [{ n: count('gone'), state: 'gone (expired or deleted)' }] : []),
    ...(count('damaged') ? [{ n: count('damaged'), state: 'damaged' }] : []),
  ]
  return parts.map((p, i) => phrase(p.n, p.state, i === 0)).join(' and ')
}

/**
 * Marks the set complete. `check` (when given) says whether an archive is gone or damaged: the stored marker is
 * then read, and replaced when its manifest names such an archive (under any of `archivePrefixes`: a scope's
 * manifest names the shared cache's archives too) or is not a marker this action can read.
 */
export async function storeMarker(
  ctx: MarkerContext,
  marker: MarkerDocument,
  check?: (key: string) => Promise<ArchiveState>,
): Promise<void> {
  if (!check) return createOnce(ctx, marker)
  const read = await readMarker(ctx)
  const prefixes = ctx.archivePrefixes ?? [ctx.prefix]
  const bad = await badArchives(read.value ? manifestArchiveKeys(read.value, prefixes) : [], check)
  const document = marker as unknown as Record<string, unknown>
  const merge = (stored: Record<string, unknown> | undefined) =>
    stored === undefined || manifestArchiveKeys(stored, prefixes).some((key) => bad.has(key)) ? document : undefined
  if (merge(read.value) === undefined) {
    ctx.log?.debug('The set is already marked complete, and its manifest names no archive that is gone or damaged.')
    return
  }
  if (read.exists && read.value === undefined)
    ctx.log?.info('The stored completion marker is not one this action can read: replacing it.')
  else if (read.exists) ctx.log?.info(`The completion marker names ${describeBad(bad)}: replacing it.`)
  await updateShared(
    ctx,
    {
      key: ctx.key,
      parse: (raw) => {
        parseCompleteMarker(raw, ctx.setKey)
        return raw as Record<string, unknown>
      },
      merge,
    },
    { earlier: read },
  )
}
