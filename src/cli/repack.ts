import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { canRead, compressionLabel, strongestCompression } from '../archive/archive.js'
import { repackArchive } from '../archive/repack.js'
import {
  indexDocument,
  parseCompleteMarker,
  parseIndex,
  type IndexEntry,
  type PackageIndex,
} from '../bucket/cache-index.js'
import { contentObjectKey, AarFormat } from '../bucket/layout.js'
import { manifestDocument } from '../bucket/set-manifest.js'
import { updateShared, type SharedWriteContext } from '../bucket/shared-document.js'
import { Formats, MetaFolder } from '../constants.js'
import { errorMessage, PreconditionFailedError } from '../errors.js'
import { isRecord } from '../json.js'
import type { ArchiveFormat } from '../keys/keys.js'
import type { Log } from '../log.js'
import { formatBytes } from '../report/report.js'
import { getJson, putFile, type ListedObject, type Storage } from '../storage/index.js'
import { classify, listPrefix } from './prune.js'

/**
 * `scipio-s3-cache repack`: packs the shared cache's archives again at the strongest setting (`code.tar.zst`,
 * zstd level 22), a cost paid once that every consumer's download profits from. A producer stores quickly
 * (archive.ts `storeCompression`); this runs on a schedule, like prune, and needs no Xcode and no Package.resolved.
 *
 * Archives are content-addressed, so a repacked one is a new object: it is uploaded first, then the index entry
 * that named the old object is replaced (If-Match on the ETag read, read and merged again on a conflict: a
 * producer writing the same index meanwhile keeps its entries), then every completion marker whose manifest names
 * it. A consumer reading at any moment follows the old document to the old object or the new one to the new
 * object: both exist, and repack deletes nothing (prune does, once nothing names the old object).
 */

export interface RepackInput {
  prefix: string
  storage: Storage
  /** Only archives stored more than this many days ago: fresh ones may be replaced by the next producer run. */
  olderThanDays: number
  /** Also turn tar.zst and tar.gz entries into code.tar.zst, which releases before it cannot read. */
  convertEarlier: boolean
  now: Date
  publicRead: boolean
  log: Log
  /** Where archives are unpacked and packed again (default: the system's temporary folder). */
  tempRoot?: string
  conflictRetry?: SharedWriteContext['conflictRetry']
}

export interface RepackCandidate {
  indexKey: string
  packageKey: string
  entry: IndexEntry & { format: ArchiveFormat }
}

export interface RepackPlan {
  candidates: RepackCandidate[]
  /** Entries left as they are, by reason. */
  skipped: { packed: number; recent: number; earlierFormat: number; other: number }
  /** The completion markers (their keys), whose manifests may name a candidate. */
  markers: string[]
}

export interface RepackResult {
  targetName: string
  key: string
  /** The new object; absent when the archive was left as it is. */
  newKey?: string
  /** The index entry that now names it. */
  replacement?: IndexEntry
  before: number
  after?: number
  /** Why it was left as it is, or failed. */
  note?: string
  failed?: boolean
}

const packedLabel = compressionLabel(strongestCompression)

export async function planRepack(input: RepackInput): Promise<RepackPlan> {
  const { prefix, storage } = input
  if (!storage.list) throw new Error('repack needs a store it can list (a bucket, not a public URL)')
  const objects = await storage.list(listPrefix(prefix))
  const written = new Map<string, ListedObject>(objects.map((o) => [o.key, o]))
  const cutoff = input.now.getTime() - input.olderThanDays * 86_400_000
  const skipped = { packed: 0, recent: 0, earlierFormat: 0, other: 0 }
  const candidates: RepackCandidate[] = []
  for (const o of objects) {
    const kind = classify(prefix, o.key)
    if (kind?.kind !== 'index') continue
    const index = await readIndex(storage, prefix, o.key, kind.packageKey!, input.log)
    for (const entry of index?.targets ?? []) {
      const stored = written.get(entry.key)
      if (entry.format === AarFormat || !canRead(entry.format) || !stored) skipped.other += 1
      else if (entry.compression === packedLabel) skipped.packed += 1
      else if (entry.format !== 'code.tar.zst' && !input.convertEarlier) skipped.earlierFormat += 1
      else if (stored.lastModified.getTime() > cutoff) skipped.recent += 1
      else candidates.push({ indexKey: o.key, packageKey: kind.packageKey!, entry: { ...entry, format: entry.format } })
    }
  }
  const markers = objects.filter((o) => classify(prefix, o.key)?.kind === 'marker').map((o) => o.key)
  return { candidates, skipped, markers }
}

async function readIndex(
  storage: Storage,
  prefix: string,
  key: string,
  packageKey: string,
  log: Log,
): Promise<PackageIndex | undefined> {
  try {
    return parseIndex(await getJson(storage, key), prefix, packageKey)
  } catch (error) {
    log.warning(`Skipping ${key}: ${errorMessage(error)}`)
    return undefined
  }
}

/** `index` with the entry naming `oldKey` replaced by `entry`; undefined when it no longer names it. */
export function replaceEntry(
  index: PackageIndex | undefined,
  oldKey: string,
  entry: IndexEntry,
): PackageIndex | undefined {
  if (!index?.targets.some((t) => t.key === oldKey) || index.targets.some((t) => t.key === entry.key)) return undefined
  return { ...index, targets: index.targets.map((t) => (t.key === oldKey ? entry : t)) }
}

/** Repacks each candidate in turn (one at a time: the strongest level holds a few hundred MB). */
export async function executeRepack(plan: RepackPlan, input: RepackInput): Promise<RepackResult[]> {
  const results: RepackResult[] = []
  const replaced = new Map<string, IndexEntry>()
  for (const candidate of plan.candidates) {
    const result = await repackOne(candidate, input)
    results.push(result)
    if (result.replacement) replaced.set(result.key, result.replacement)
  }
  if (replaced.size > 0) await updateMarkers(plan.markers, replaced, input)
  return results
}

function sharedContext(input: RepackInput): SharedWriteContext {
  return {
    storage: input.storage,
    prefix: input.prefix,
    publicRead: input.publicRead,
    log: input.log,
    ...(input.conflictRetry ? { conflictRetry: input.conflictRetry } : {}),
  }
}

async function repackOne(candidate: RepackCandidate, input: RepackInput): Promise<RepackResult> {
  const { entry } = candidate
  const base = { targetName: entry.targetName, key: entry.key, before: entry.size }
  const folder = await fs.mkdtemp(path.join(input.tempRoot ?? os.tmpdir(), 'scipio-s3-cache-repack-'))
  try {
    const packed = await repackArchive(input.storage, entry, folder)
    if (packed.size >= entry.size) return { ...base, after: packed.size, note: 'no smaller: left as it is' }
    const newKey = contentObjectKey(input.prefix, entry.targetName, entry.scipioKey, packed.sha256, 'code.tar.zst')
    try {
      await putFile(input.storage, newKey, packed.file, {
        contentType: 'application/octet-stream',
        publicRead: input.publicRead,
        size: packed.size,
        ifNoneMatch: '*',
      })
    } catch (error) {
      // Its name is its SHA-256: an object already there under it holds these bytes.
      if (!(error instanceof PreconditionFailedError)) throw error
    }
    const updated: IndexEntry = {
      ...entry,
      format: 'code.tar.zst',
      key: newKey,
      size: packed.size,
      sha256: packed.sha256,
      compression: packed.compression,
    }
    const wrote = await updateShared(sharedContext(input), {
      key: candidate.indexKey,
      parse: (raw) => parseIndex(raw, input.prefix, candidate.packageKey),
      merge: (stored) => replaceEntry(stored, entry.key, updated),
      toJson: indexDocument,
    })
    if (!wrote) return { ...base, after: packed.size, note: 'the index no longer names it (a producer replaced it)' }
    return { ...base, newKey, after: packed.size, replacement: updated }
  } catch (error) {
    input.log.warning(`Could not repack ${entry.targetName} (${entry.key}): ${errorMessage(error)}`)
    return { ...base, note: errorMessage(error), failed: true }
  } finally {
    await fs.rm(folder, { recursive: true, force: true })
  }
}

/** Every completion marker whose manifest names a repacked archive names the new one instead. */
async function updateMarkers(markers: string[], replaced: ReadonlyMap<string, IndexEntry>, input: RepackInput) {
  for (const key of markers) {
    const setKey = /([0-9a-f]{64})\.json$/.exec(key)?.[1]
    if (!setKey) continue
    try {
      await updateShared(sharedContext(input), {
        key,
        parse: (raw) => {
          parseCompleteMarker(raw, setKey)
          return raw as Record<string, unknown>
        },
        merge: (stored) => (stored ? replaceInManifest(stored, replaced, input.prefix) : undefined),
      })
    } catch (error) {
      input.log.warning(`Could not update the completion marker ${key}: ${errorMessage(error)}`)
    }
  }
}

/** The marker with each manifest entry naming a replaced archive replaced; undefined when it names none. */
export function replaceInManifest(
  marker: Record<string, unknown>,
  replaced: ReadonlyMap<string, IndexEntry>,
  prefix: string,
): Record<string, unknown> | undefined {
  if (!Array.isArray(marker.packages)) return undefined
  let changed = false
  const packages = marker.packages.map((value: unknown) => {
    if (!isRecord(value) || typeof value.packageKey !== 'string') return value
    let index: PackageIndex
    try {
      index = parseIndex({ ...value, schema: Formats.index }, prefix, value.packageKey)
    } catch {
      return value
    }
    if (!index.targets.some((t) => replaced.has(t.key))) return value
    changed = true
    const targets = index.targets.map((t) => replaced.get(t.key) ?? t)
    return manifestDocument([{ ...index, targets }])[0]!
  })
  return changed ? { ...marker, packages } : undefined
}

export function renderRepack(plan: RepackPlan, results: RepackResult[] | undefined, bucket: string, prefix: string) {
  const { skipped } = plan
  const lines = [
    `s3://${bucket}/${listPrefix(prefix)}: ${plan.candidates.length} archives to repack as code.tar.zst (${packedLabel}); ` +
      `left as they are: ${skipped.packed} already repacked, ${skipped.recent} stored too recently, ` +
      `${skipped.earlierFormat} in an earlier format (--convert-earlier-formats), ${skipped.other} other.`,
  ]
  if (!results) {
    for (const c of plan.candidates) lines.push(`  ${formatBytes(c.entry.size).padStart(10)}  ${c.entry.key}`)
    if (plan.candidates.length) lines.push('Dry run: nothing was written.')
    return `${lines.join('\n')}\n`
  }
  let before = 0
  let after = 0
  for (const r of results) {
    if (r.newKey) {
      before += r.before
      after += r.after!
      lines.push(`  ${r.targetName}: ${formatBytes(r.before)} → ${formatBytes(r.after!)}  ${r.newKey}`)
    } else lines.push(`  ${r.targetName}: ${r.failed ? 'failed' : 'kept'} (${r.note})  ${r.key}`)
  }
  const count = results.filter((r) => r.newKey).length
  lines.push(`Repacked ${count} archives: ${formatBytes(before)} → ${formatBytes(after)}.`)
  if (count)
    lines.push(`The earlier objects stay until prune finds nothing naming them (${MetaFolder} documents updated).`)
  return `${lines.join('\n')}\n`
}
