import { Formats } from '../constants.js'
import { isRecord } from '../json.js'
import { indexDocument, parseIndex, type PackageIndex } from './cache-index.js'

/**
 * The set manifest: the completion marker also carries, for every package of the set, the index entries of the
 * producer that marked it (its own build's, one dependency context: not the whole stored index), so a consumer
 * whose build is marked complete reads that one document and then the archives, instead of one index per
 * package (issue 19). Older readers ignore the marker's `packages` field; a marker without it (an older
 * producer) leaves the consumer on the per-package path. The entries are the indexes' own, copied as they are
 * and validated by the same parser (`parseIndex`), so a manifest can promise nothing an index could not.
 */

/** The marker's `packages` field: per package key, its index's fields as stored (without schema and date). */
export function manifestDocument(indexes: readonly PackageIndex[]): Record<string, unknown>[] {
  return indexes.map((index) => {
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { schema, createdAt, ...rest } = indexDocument(index)
    return rest
  })
}

/**
 * The manifest of a completion marker already checked by `parseCompleteMarker`: one index per package of this
 * run, keyed by package key, in the run's package order. `undefined` when the marker has none (an older
 * producer); throws when it has one that is not exactly this run's packages, or any entry an index would not
 * pass.
 */
export function parseSetManifest(
  marker: unknown,
  prefix: string | readonly string[],
  packageKeys: readonly string[],
): Map<string, PackageIndex> | undefined {
  if (!isRecord(marker) || marker.packages === undefined) return undefined
  const raw = marker.packages
  if (!Array.isArray(raw)) throw new Error("the manifest's 'packages' is not a list")
  const byKey = new Map<string, unknown>()
  for (const [i, value] of raw.entries()) {
    if (!isRecord(value) || typeof value.packageKey !== 'string')
      throw new Error(`manifest package ${i + 1} has no key`)
    if (byKey.has(value.packageKey)) throw new Error(`the manifest lists package ${value.packageKey} twice`)
    byKey.set(value.packageKey, value)
  }
  if (byKey.size !== packageKeys.length || packageKeys.some((key) => !byKey.has(key)))
    throw new Error("the manifest's packages are not this build's")
  const indexes = new Map<string, PackageIndex>()
  for (const key of packageKeys) {
    const value = byKey.get(key) as Record<string, unknown>
    try {
      indexes.set(key, parseIndex({ ...value, schema: Formats.index }, prefix, key))
    } catch (error) {
      throw new Error(`package ${key.slice(0, 12)} in the manifest: ${(error as Error).message}`, { cause: error })
    }
  }
  return indexes
}

/**
 * Every archive key a marker's manifest lists, under any of the layout's archive prefixes (a scope's manifest may
 * name the shared cache's archives), for housekeeping and healing: what fails to parse protects nothing.
 */
export function manifestArchiveKeys(marker: unknown, prefix: string | readonly string[]): string[] {
  if (!isRecord(marker) || !Array.isArray(marker.packages)) return []
  return marker.packages.flatMap((value) => {
    if (!isRecord(value) || typeof value.packageKey !== 'string') return []
    try {
      return parseIndex({ ...value, schema: Formats.index }, prefix, value.packageKey).targets.map((t) => t.key)
    } catch {
      return []
    }
  })
}
