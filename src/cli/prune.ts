import { MetaFolder } from '../constants.js'
import { parseIndex } from '../bucket/cache-index.js'
import { manifestArchiveKeys } from '../bucket/set-manifest.js'
import { StorageError } from '../errors.js'
import type { KeyPlan } from '../keys/keys.js'
import { afterRunsFolder, probeObjectKey, scopePrefix, scopesPrefix } from '../bucket/layout.js'
import { pinRecordObjectKey } from '../bucket/pin-record.js'
import { formatBytes } from '../report/report.js'
import { deleteBatchSize, keyOrder, type DeleteFailure, type KeyRange, type ListedObject } from '../storage/s3-admin.js'
import { getJson, type Storage } from '../storage/index.js'

/**
 * Housekeeping: which objects under the prefix no kept Package.resolved uses. Only objects of this
 * project's layout are ever candidates; anything else under the prefix is left alone.
 */

/** `--older-than`'s default: the grace age of an object that nothing kept lists. */
export const defaultOlderThanDays = 1

export type ObjectKind = 'archive' | 'index' | 'marker' | 'record' | 'probe'

export interface PruneCandidate extends ListedObject {
  kind: ObjectKind
}

export interface PrunePlan {
  prefix: string
  listed: number
  /** Objects used by a kept Package.resolved (or by an index that is not pruned). */
  inUse: number
  /** Unused, but written less than --older-than days ago. */
  recent: number
  /** Under the prefix but not of this project's layout. */
  foreign: number
  candidates: PruneCandidate[]
  /** Every listed object's version (`versionOf`), for the deletion guard. */
  seen: ReadonlyMap<string, string>
}

export interface PruneAdmin {
  list(prefix: string, range?: KeyRange, startAfter?: string): Promise<ListedObject[]>
  delete(keys: string[]): Promise<DeleteFailure[]>
}

/** An object's version as a listing shows it: a rewrite changes it, whatever the clocks say. */
export function versionOf(o: ListedObject): string {
  return `${o.lastModified.getTime()} ${o.etag ?? ''}`
}

const hex64 = '[0-9a-f]{64}'

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** The folder every object lives in: `<prefix>/`, or the whole bucket when the prefix is empty. */
export function listPrefix(prefix: string): string {
  return prefix ? `${prefix}/` : ''
}

/** The patterns of one layout's object names, compiled once per prefix (a listing may hold a million keys). */
const layoutPatterns = new Map<string, { index: RegExp; marker: RegExp; record: RegExp; archive: RegExp[] }>()

function patternsOf(prefix: string) {
  let patterns = layoutPatterns.get(prefix)
  if (patterns) return patterns
  const p = escapeRegExp(listPrefix(prefix))
  const meta = escapeRegExp(MetaFolder)
  patterns = {
    index: new RegExp(`^${p}${meta}/packages/(${hex64})\\.json$`),
    marker: new RegExp(`^${p}${meta}/complete/${hex64}\\.json$`),
    record: new RegExp(`^${p}${meta}/pins/${hex64}\\.json$`),
    // Content-addressed archives (`<Target>/<Scipio key>/<SHA-256>.<format>`, `.aar` copies included) and the fixed
    // names of earlier releases. The fixed `<Target>/<key>.aar` is scipio-s3-storage's own: never ours to delete.
    archive: [
      new RegExp(`^${p}[^/.][^/]*/${hex64}/${hex64}\\.((code\\.)?tar\\.zst|tar\\.gz|aar)$`),
      new RegExp(`^${p}[^/.][^/]*/${hex64}\\.tar\\.(zst|gz)$`),
    ],
  }
  layoutPatterns.set(prefix, patterns)
  return patterns
}

export function classify(prefix: string, key: string): { kind: ObjectKind; packageKey?: string } | undefined {
  const patterns = patternsOf(prefix)
  const index = patterns.index.exec(key)
  if (index) return { kind: 'index', packageKey: index[1]! }
  if (patterns.marker.test(key)) return { kind: 'marker' }
  if (patterns.record.test(key)) return { kind: 'record' }
  if (key === probeObjectKey(prefix)) return { kind: 'probe' }
  if (patterns.archive.some((pattern) => pattern.test(key))) return { kind: 'archive' }
  return undefined
}

/** The archive keys an index lists; an unreadable index protects nothing (and can itself be pruned). */
async function archivesOf(
  storage: Storage,
  prefix: string | readonly string[],
  key: string,
  packageKey: string,
): Promise<string[]> {
  let raw: unknown
  try {
    raw = await getJson(storage, key)
  } catch (error) {
    if (error instanceof StorageError) throw error
    return []
  }
  if (raw === undefined) return []
  try {
    return parseIndex(raw, prefix, packageKey).targets.map((t) => t.key)
  } catch {
    return []
  }
}

async function manifestArchivesOf(
  storage: Storage,
  prefix: string | readonly string[],
  key: string,
): Promise<string[]> {
  try {
    return manifestArchiveKeys(await getJson(storage, key), prefix)
  } catch (error) {
    if (error instanceof StorageError) throw error
    return []
  }
}

export interface PruneInput {
  prefix: string
  /** Key plans of every kept Package.resolved. */
  plans: KeyPlan[]
  olderThanDays: number
  now: Date
  storage: Storage
  admin: PruneAdmin
}

export async function planPrune(input: PruneInput): Promise<PrunePlan> {
  const { prefix, storage } = input
  // Run records (records/layout.ts) are no object of the cache's: the listing starts after their folder, so prune
  // neither pages through them nor ever counts or deletes one (a lifecycle rule expires them: docs/storage.md).
  const objects = await input.admin.list(listPrefix(prefix), undefined, afterRunsFolder(prefix))
  const seen = new Map(objects.map((o) => [o.key, versionOf(o)]))
  const cutoff = input.now.getTime() - input.olderThanDays * 24 * 3600 * 1000
  // The probe (bucket/shared-document.ts) is one tiny object that a store ignoring conditional writes keeps.
  const referenced = new Set<string>([probeObjectKey(prefix)])
  for (const plan of input.plans) {
    referenced.add(plan.completeKey)
    for (const pkg of plan.packages) referenced.add(pkg.indexKey).add(pinRecordObjectKey(prefix, pkg.pin))
  }
  const ours = objects.flatMap((o) => {
    const kind = classify(prefix, o.key)
    return kind ? [{ ...o, ...kind }] : []
  })
  // Every index that stays (used, or too recent to prune) keeps its archives, so no index is left pointing to nothing.
  const staying = ours.filter((o) => o.kind === 'index' && (referenced.has(o.key) || o.lastModified.getTime() > cutoff))
  for (const index of staying) {
    for (const key of await archivesOf(storage, prefix, index.key, index.packageKey!)) referenced.add(key)
  }
  // And every marker that stays keeps the archives its manifest lists (a consumer may follow it, not an index).
  const markers = ours.filter(
    (o) => o.kind === 'marker' && (referenced.has(o.key) || o.lastModified.getTime() > cutoff),
  )
  for (const marker of markers) {
    for (const key of await manifestArchivesOf(storage, prefix, marker.key)) referenced.add(key)
  }
  let inUse = 0
  let recent = 0
  const candidates: PruneCandidate[] = []
  for (const o of ours) {
    if (referenced.has(o.key)) inUse += 1
    else if (o.lastModified.getTime() > cutoff) recent += 1
    else candidates.push({ key: o.key, size: o.size, lastModified: o.lastModified, kind: o.kind })
  }
  const outside = candidates.find((c) => !c.key.startsWith(listPrefix(prefix)))
  if (outside) throw new Error(`refusing to prune ${outside.key}: it is outside the prefix '${prefix}'`)
  candidates.sort((a, b) => (a.key < b.key ? -1 : 1))
  return { prefix, listed: objects.length, inUse, recent, foreign: objects.length - ours.length, candidates, seen }
}

/**
 * The archive keys a document of the layout under `prefix` lists (an index's entries, a marker's manifest),
 * wherever `archivePrefixes` let them live (a scope's documents name the shared cache's archives too); none for
 * others.
 */
export function referencesOf(
  storage: Storage,
  prefix: string,
  archivePrefixes: readonly string[] = [prefix],
): (key: string) => Promise<string[]> {
  return async (key) => {
    const kind = classify(prefix, key)
    if (kind?.kind === 'index') return archivesOf(storage, archivePrefixes, key, kind.packageKey!)
    if (kind?.kind === 'marker') return manifestArchivesOf(storage, archivePrefixes, key)
    return []
  }
}

/** Keys in S3's order (their UTF-8 bytes), each encoded once rather than once per comparison. */
function inKeyOrder(keys: readonly string[]): string[] {
  return keys
    .map((key) => ({ key, bytes: Buffer.from(key) }))
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes))
    .map((k) => k.key)
}

/** A candidate the guard took out of a batch, and why. */
export interface Spared {
  key: string
  reason: string
}

export interface DeletionGuardInput {
  admin: PruneAdmin
  /** A folder of documents (indexes, markers) listed again, whole, before each batch; absent: the ranges cover them. */
  documents?: string
  /** The folder the batches' objects are in, listed again over each batch's key ranges. */
  objects: string
  /**
   * The key ranges listed before a batch, given its keys in S3's order and whether a key is known deleted by this
   * run; default: one range from the batch's first key to its last.
   */
  ranges?: (sorted: readonly string[], deleted: (key: string) => boolean) => KeyRange[]
  /** What a document lists; [] for a key that lists nothing. */
  referencesOf: (key: string) => Promise<string[]>
  /** Every object's version when the plan was made (`PrunePlan.seen`). */
  seen: ReadonlyMap<string, string>
}

/**
 * Keeps a deletion planned from an earlier listing safe against producers running meanwhile. Immediately before
 * each batch it lists the batch's key ranges (and the documents' folder, when it has one), reads every document
 * written since the plan (new, or another version) that those listings show, and takes out of the batch every
 * object such a document lists and every object written again since the plan (a producer uploading the same
 * bytes, an index rewritten). What the plan saw unchanged was already accounted for by the plan. A document once
 * read protects its objects for the rest of the run.
 */
export class DeletionGuard {
  private readonly known: Map<string, string>
  /** Objects listed by a document written since the plan, with that document. */
  private readonly listed = new Map<string, string>()
  private readonly gone = new Set<string>()

  constructor(private readonly input: DeletionGuardInput) {
    this.known = new Map(input.seen)
  }

  /** Keys this run deleted: later ranges may span them without listing anything more. */
  deleted(keys: readonly string[]): void {
    for (const key of keys) this.gone.add(key)
  }

  private rangesOf(sorted: readonly string[]): KeyRange[] {
    const { ranges, documents } = this.input
    // A batch of documents only is covered by the listing of the documents below.
    if (documents !== undefined && sorted.every((key) => key.startsWith(documents))) return []
    if (ranges) return ranges(sorted, (key) => this.gone.has(key))
    return [{ from: sorted[0]!, through: sorted[sorted.length - 1]! }]
  }

  async screen<T extends { key: string }>(batch: readonly T[]): Promise<{ keep: T[]; spared: Spared[] }> {
    if (batch.length === 0) return { keep: [], spared: [] }
    const sorted = inKeyOrder(batch.map((c) => c.key))
    const listings: ListedObject[][] = []
    for (const range of this.rangesOf(sorted)) listings.push(await this.input.admin.list(this.input.objects, range))
    // The documents last, as close to the deletion as possible.
    if (this.input.documents !== undefined) listings.push(await this.input.admin.list(this.input.documents))
    const now = new Map<string, string>()
    for (const o of listings.flat()) {
      const version = versionOf(o)
      now.set(o.key, version)
      if (this.known.get(o.key) === version) continue
      this.known.set(o.key, version)
      for (const key of await this.input.referencesOf(o.key)) if (!this.listed.has(key)) this.listed.set(key, o.key)
    }
    const keep: T[] = []
    const spared: Spared[] = []
    for (const c of batch) {
      const version = now.get(c.key)
      const by = this.listed.get(c.key)
      if (version === undefined) continue // gone already: nothing to delete
      if (version !== this.input.seen.get(c.key)) spared.push({ key: c.key, reason: 'written again since the plan' })
      else if (by) spared.push({ key: c.key, reason: `listed by ${by}, written since the plan` })
      else keep.push(c)
    }
    return { keep, spared }
  }
}

export interface PruneResult {
  deleted: number
  failures: DeleteFailure[]
  /** Candidates the guard kept: a producer wrote them, or a document listing them, since the plan. */
  spared: Spared[]
}

/**
 * Indexes and markers go first, archives last: no index ever names an archive that is already gone. Each batch
 * passes the guard immediately before it is deleted.
 */
export async function executePrune(plan: PrunePlan, admin: PruneAdmin, guard: DeletionGuard): Promise<PruneResult> {
  const result: PruneResult = { deleted: 0, failures: [], spared: [] }
  for (const archives of [false, true]) {
    const phase = plan.candidates.filter((c) => (c.kind === 'archive') === archives)
    for (let start = 0; start < phase.length; start += deleteBatchSize) {
      const { keep, spared } = await guard.screen(phase.slice(start, start + deleteBatchSize))
      result.spared.push(...spared)
      const failures = keep.length > 0 ? await admin.delete(keep.map((c) => c.key)) : []
      const refused = new Set(failures.map((f) => f.key))
      guard.deleted(keep.map((c) => c.key).filter((key) => !refused.has(key)))
      result.deleted += keep.length - failures.length
      result.failures.push(...failures)
    }
    if (result.failures.length > 0) break
  }
  return result
}

/** The guard for a plan of `prune`: the cache's documents, and the objects under the prefix. */
export function pruneGuard(plan: PrunePlan, storage: Storage, admin: PruneAdmin): DeletionGuard {
  return new DeletionGuard({
    admin,
    documents: `${listPrefix(plan.prefix)}${MetaFolder}/`,
    objects: listPrefix(plan.prefix),
    referencesOf: referencesOf(storage, plan.prefix),
    seen: plan.seen,
  })
}

export function parseDays(raw: string | undefined, fallback: number): number | undefined {
  if (raw === undefined) return fallback
  if (!/^\d+(\.\d+)?$/.test(raw.trim())) return undefined
  return Number(raw)
}

export function renderPrunePlan(plan: PrunePlan, bucket: string, keptFiles: number, olderThanDays: number): string {
  const bytes = plan.candidates.reduce((sum, c) => sum + c.size, 0)
  const lines = [
    `s3://${bucket}/${listPrefix(plan.prefix)}: ${plan.listed} objects; ${plan.inUse} in use by ${keptFiles} Package.resolved file(s); ` +
      `${plan.recent} unused but newer than ${olderThanDays} day(s); ${plan.foreign} not written by scipio-s3-cache (left alone).`,
  ]
  if (plan.candidates.length === 0) {
    lines.push('Nothing to prune.')
  } else {
    lines.push(`${plan.candidates.length} objects (${formatBytes(bytes)}) to prune:`)
    for (const c of plan.candidates)
      lines.push(`  ${c.lastModified.toISOString().slice(0, 10)}  ${formatBytes(c.size).padStart(10)}  ${c.key}`)
  }
  return `${lines.join('\n')}\n`
}

export function describeFailures(failures: DeleteFailure[]): string {
  return failures
    .slice(0, 20)
    .map((f) => `  ${f.key}: ${f.reason}`)
    .concat(failures.length > 20 ? [`  ... and ${failures.length - 20} more`] : [])
    .join('\n')
}

/** The candidates a producer running meanwhile made prune keep, for the text output. */
export function describeSpared(spared: Spared[]): string {
  if (spared.length === 0) return ''
  return `Kept ${spared.length} of them: a producer wrote them, or an index or marker listing them, since the plan.\n${describeFailures(spared)}\n`
}

/**
 * Scopes (bucket/layout.ts): a pull request's scope is of no use once the pull request is closed, and any scope
 * that nobody has written for a while is likely dead. Scope pruning lists only `[<prefix>/].scipio-s3-cache-scopes/`
 * and removes whole scopes; the shared cache is never listed, so never touched.
 */

export interface ScopeSummary {
  name: string
  objects: number
  bytes: number
  /** The last write of any of its objects. */
  newest: Date
  /** Why it goes: not among the scopes to keep, or nothing written for longer than the age limit; absent: kept. */
  reason?: 'not kept' | 'old'
}

export interface ScopePrunePlan {
  prefix: string
  scopes: ScopeSummary[]
  candidates: PruneCandidate[]
  /** Every listed object's version (`versionOf`), for the deletion guard. */
  seen: ReadonlyMap<string, string>
  /** Every listed key, in S3's order (the listing's): where the guard's ranges may span without listing more. */
  order: readonly string[]
}

export interface ScopePruneInput {
  prefix: string
  /** Scope names to keep (the open pull requests' `pr-<N>`, branches); absent: only age decides. */
  keep?: readonly string[]
  /** A scope whose newest object is older than this many days goes; absent: only `keep` decides. */
  olderThanDays?: number
  now: Date
  admin: PruneAdmin
}

/** `12` stands for pull request 12's scope, `pr-12`; any other value is a scope's name. */
export function scopeNamesToKeep(values: readonly string[]): string[] {
  return values
    .flatMap((value) => value.split(/[\s,]+/))
    .filter(Boolean)
    .map((value) => (/^\d+$/.test(value) ? `pr-${Number(value)}` : value))
}

/** One scope's objects as the plan sums them up: no list of them is kept (a scope may hold a million). */
interface ScopeTally {
  objects: number
  bytes: number
  newest: number
  /** Where its objects start in the listing (a scope's keys are contiguous in S3's order). */
  first: number
}

export async function planScopePrune(input: ScopePruneInput): Promise<ScopePrunePlan> {
  const folder = `${scopesPrefix(input.prefix)}/`
  const objects = await input.admin.list(folder)
  const cutoff = input.olderThanDays === undefined ? undefined : input.now.getTime() - input.olderThanDays * 86_400_000
  const keep = input.keep === undefined ? undefined : new Set(input.keep)
  const tallies = new Map<string, ScopeTally>()
  const scopeOf = (key: string) => (key.startsWith(folder) ? key.slice(folder.length).split('/')[0] : undefined)
  for (const [i, o] of objects.entries()) {
    const name = scopeOf(o.key)
    if (!name) continue
    const tally = tallies.get(name) ?? { objects: 0, bytes: 0, newest: Number.NEGATIVE_INFINITY, first: i }
    tally.objects += 1
    tally.bytes += o.size
    tally.newest = Math.max(tally.newest, o.lastModified.getTime())
    tallies.set(name, tally)
  }
  const scopes: ScopeSummary[] = []
  const going = new Set<string>()
  for (const [name, tally] of [...tallies].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const reason =
      keep && !keep.has(name) ? 'not kept' : cutoff !== undefined && tally.newest < cutoff ? 'old' : undefined
    scopes.push({
      name,
      objects: tally.objects,
      bytes: tally.bytes,
      newest: new Date(tally.newest),
      ...(reason ? { reason } : {}),
    })
    if (reason) going.add(name)
  }
  // Only this project's objects of the scope's layout; anything else in the folder is left alone.
  const candidates: PruneCandidate[] = []
  for (const o of objects) {
    const name = scopeOf(o.key)
    if (!name || !going.has(name)) continue
    const kind = classify(scopePrefix(input.prefix, name), o.key)
    if (kind) candidates.push({ key: o.key, size: o.size, lastModified: o.lastModified, kind: kind.kind })
  }
  const outside = candidates.find((c) => !c.key.startsWith(folder))
  if (outside) throw new Error(`refusing to prune ${outside.key}: it is outside the scopes folder '${folder}'`)
  const seen = new Map(objects.map((o) => [o.key, versionOf(o)]))
  return {
    prefix: input.prefix,
    scopes,
    candidates: candidates.sort((a, b) => (a.key < b.key ? -1 : 1)),
    seen,
    order: objects.map((o) => o.key),
  }
}

/** The index of the first of `order`'s keys (in S3's order) at or after `key`. */
function firstAtOrAfter(order: readonly string[], key: string): number {
  let low = 0
  let high = order.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (keyOrder(order[mid]!, key) < 0) low = mid + 1
    else high = mid
  }
  return low
}

/**
 * The ranges listed before a batch of scope pruning: one per scope of the batch, from the scope's first key (so its
 * documents written since the plan are seen) to the batch's last key in it, and two neighbours joined into one
 * where nothing the plan listed lies between them but keys this run deleted. Each object is so listed about once
 * per phase (documents, then archives), whatever the batch size and the number of scopes: the cost stays linear
 * in the objects.
 */
export function scopeBatchRanges(
  folder: string,
  order: readonly string[],
): (sorted: readonly string[], deleted: (key: string) => boolean) => KeyRange[] {
  return (sorted, deleted) => {
    const inBatch = new Set(sorted)
    const ranges: KeyRange[] = []
    for (const key of sorted) {
      const scope = `${folder}${key.slice(folder.length).split('/')[0]}/`
      const last = ranges[ranges.length - 1]
      if (last && key.startsWith(scopeFolderOf(folder, last.through))) {
        last.through = key
        continue
      }
      if (last && nothingBetween(order, last.through, scope, (k) => inBatch.has(k) || deleted(k))) last.through = key
      else ranges.push({ from: scope, through: key })
    }
    return ranges
  }
}

function scopeFolderOf(folder: string, key: string): string {
  return `${folder}${key.slice(folder.length).split('/')[0]}/`
}

/** Whether every key the plan listed after `after` and before `before` is `gone`. */
function nothingBetween(
  order: readonly string[],
  after: string,
  before: string,
  gone: (key: string) => boolean,
): boolean {
  for (let i = firstAtOrAfter(order, after); i < order.length && keyOrder(order[i]!, before) < 0; i++)
    if (order[i] !== after && !gone(order[i]!)) return false
  return true
}

/**
 * Deletes the scopes' objects: indexes and markers first, archives last, as for the shared cache. Before each batch
 * the guard lists the batch's scopes (scopeBatchRanges) and keeps what a run of the scope's pull request wrote
 * again since the plan, and every archive that a document it wrote since (an index, a marker) names; what it writes
 * new was never a candidate.
 */
export function executeScopePrune(plan: ScopePrunePlan, admin: PruneAdmin, storage: Storage): Promise<PruneResult> {
  const folder = `${scopesPrefix(plan.prefix)}/`
  const { candidates, seen } = plan
  const guard = new DeletionGuard({
    admin,
    objects: folder,
    ranges: scopeBatchRanges(folder, plan.order),
    referencesOf: scopeReferencesOf(storage, plan.prefix),
    seen,
  })
  return executePrune(
    { prefix: scopesPrefix(plan.prefix), listed: seen.size, inUse: 0, recent: 0, foreign: 0, candidates, seen },
    admin,
    guard,
  )
}

/** What a scope's document lists: its own archives and the shared cache's (bucket/layout.ts). */
function scopeReferencesOf(storage: Storage, prefix: string): (key: string) => Promise<string[]> {
  const folder = `${scopesPrefix(prefix)}/`
  return (key) => {
    const name = key.startsWith(folder) ? key.slice(folder.length).split('/')[0] : undefined
    if (!name) return Promise.resolve([])
    const scope = scopePrefix(prefix, name)
    return referencesOf(storage, scope, [scope, prefix])(key)
  }
}

export function renderScopePrunePlan(plan: ScopePrunePlan, bucket: string): string {
  const folder = `${scopesPrefix(plan.prefix)}/`
  if (plan.scopes.length === 0) return `s3://${bucket}/${folder}: no scopes.\n`
  const going = plan.scopes.filter((s) => s.reason)
  const lines = [
    `s3://${bucket}/${folder}: ${plan.scopes.length} scopes, ${going.length} to prune (the shared cache is not touched):`,
  ]
  for (const s of plan.scopes) {
    const why =
      s.reason === 'not kept' ? 'prune: not kept' : s.reason === 'old' ? 'prune: nothing written since' : 'keep'
    lines.push(
      `  ${s.name.padEnd(24)} ${String(s.objects).padStart(6)} objects ${formatBytes(s.bytes).padStart(10)}  last written ${s.newest.toISOString().slice(0, 10)}  ${why}`,
    )
  }
  return `${lines.join('\n')}\n`
}
