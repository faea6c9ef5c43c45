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

export function classify(prefix: string, key: string): { kind: ObjectKind; packageKey?: string } | undefined {
  const p = escapeRegExp(listPrefix(prefix))
  const meta = escapeRegExp(MetaFolder)
  const index = new RegExp(`^${p}${meta}/packages/(${hex64})\\.json$`).exec(key)
  if (index) return { kind: 'index', packageKey: index[1]! }
  if (new RegExp(`^${p}${meta}/complete/${hex64}\\.json$`).test(key)) return { kind: 'marker' }
  if (new RegExp(`^${p}${meta}/pins/${hex64}\\.json$`).test(key)) return { kind: 'record' }
  if (key === probeObjectKey(prefix)) return { kind: 'probe' }
  // Content-addressed archives (`<Target>/<Scipio key>/<SHA-256>.<format>`, `.aar` copies included) and the fixed
  // names of earlier releases. The fixed `<Target>/<key>.aar` is scipio-s3-storage's own: never ours to delete.
  if (new RegExp(`^${p}[^/.][^/]*/${hex64}/${hex64}\\.((code\\.)?tar\\.zst|tar\\.gz|aar)$`).test(key))
    return { kind: 'archive' }
  if (new RegExp(`^${p}[^/.][^/]*/${hex64}\\.tar\\.(zst|gz)$`).test(key)) return { kind: 'archive' }
  return undefined
}

/** The archive keys an index lists; an unreadable index protects nothing (and can itself be pruned). */
async function archivesOf(storage: Storage, prefix: string, key: string, packageKey: string): Promise<string[]> {
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

async function manifestArchivesOf(storage: Storage, prefix: string, key: string): Promise<string[]> {
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

/** The archive keys a document of this layout lists (an index's entries, a marker's manifest); none for others. */
export function referencesOf(storage: Storage, prefix: string): (key: string) => Promise<string[]> {
  return async (key) => {
    const kind = classify(prefix, key)
    if (kind?.kind === 'index') return archivesOf(storage, prefix, key, kind.packageKey!)
    if (kind?.kind === 'marker') return manifestArchivesOf(storage, prefix, key)
    return []
  }
}

/** A candidate the guard took out of a batch, and why. */
export interface Spared {
  key: string
  reason: string
}

export interface DeletionGuardInput {
  admin: PruneAdmin
  /** The folder of the documents that list objects (indexes, markers), listed again before each batch. */
  documents: string
  /** The folder the batches' objects are in, listed again over each batch's key range. */
  objects: string
  /** What a document lists; [] for a key that lists nothing. */
  referencesOf: (key: string) => Promise<string[]>
  /** Every object's version when the plan was made (`PrunePlan.seen`). */
  seen: ReadonlyMap<string, string>
}

/**
 * Keeps a deletion planned from an earlier listing safe against producers running meanwhile. Immediately before
 * each batch it lists the batch's key range and the documents again, reads every document written since the
 * plan (new, or another version), and takes out of the batch every object such a document lists and every
 * object written again since the plan (a producer uploading the same bytes, an index rewritten). What the plan
 * saw unchanged was already accounted for by the plan. A document once read protects its objects for the rest
 * of the run.
 */
export class DeletionGuard {
  private readonly known: Map<string, string>
  /** Objects listed by a document written since the plan, with that document. */
  private readonly listed = new Map<string, string>()

  constructor(private readonly input: DeletionGuardInput) {
    this.known = new Map(input.seen)
  }

  async screen<T extends { key: string }>(batch: readonly T[]): Promise<{ keep: T[]; spared: Spared[] }> {
    if (batch.length === 0) return { keep: [], spared: [] }
    const sorted = batch.map((c) => c.key).sort(keyOrder)
    const now = new Map<string, string>()
    // A batch of documents only is covered by the listing of the documents below.
    if (!sorted.every((key) => key.startsWith(this.input.documents))) {
      const range = { from: sorted[0]!, through: sorted[sorted.length - 1]! }
      for (const o of await this.input.admin.list(this.input.objects, range)) now.set(o.key, versionOf(o))
    }
    // The documents last, as close to the deletion as possible.
    for (const doc of await this.input.admin.list(this.input.documents)) {
      const version = versionOf(doc)
      now.set(doc.key, version)
      if (this.known.get(doc.key) === version) continue
      this.known.set(doc.key, version)
      for (const key of await this.input.referencesOf(doc.key)) if (!this.listed.has(key)) this.listed.set(key, doc.key)
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

export async function planScopePrune(input: ScopePruneInput): Promise<ScopePrunePlan> {
  const folder = `${scopesPrefix(input.prefix)}/`
  const objects = await input.admin.list(folder)
  const cutoff = input.olderThanDays === undefined ? undefined : input.now.getTime() - input.olderThanDays * 86_400_000
  const byScope = new Map<string, ListedObject[]>()
  for (const o of objects) {
    const name = o.key.slice(folder.length).split('/')[0]
    if (!o.key.startsWith(folder) || !name) continue
    byScope.set(name, [...(byScope.get(name) ?? []), o])
  }
  const scopes: ScopeSummary[] = []
  const candidates: PruneCandidate[] = []
  for (const [name, listed] of [...byScope].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const newest = new Date(Math.max(...listed.map((o) => o.lastModified.getTime())))
    const reason =
      input.keep && !input.keep.includes(name)
        ? 'not kept'
        : cutoff !== undefined && newest.getTime() < cutoff
          ? 'old'
          : undefined
    const bytes = listed.reduce((sum, o) => sum + o.size, 0)
    scopes.push({ name, objects: listed.length, bytes, newest, ...(reason ? { reason } : {}) })
    if (!reason) continue
    // Only this project's objects of the scope's layout; anything else in the folder is left alone.
    const scope = scopePrefix(input.prefix, name)
    for (const o of listed) {
      const kind = classify(scope, o.key)
      if (kind) candidates.push({ key: o.key, size: o.size, lastModified: o.lastModified, kind: kind.kind })
    }
  }
  const outside = candidates.find((c) => !c.key.startsWith(folder))
  if (outside) throw new Error(`refusing to prune ${outside.key}: it is outside the scopes folder '${folder}'`)
  const seen = new Map(objects.map((o) => [o.key, versionOf(o)]))
  return { prefix: input.prefix, scopes, candidates: candidates.sort((a, b) => (a.key < b.key ? -1 : 1)), seen }
}

/**
 * Deletes the scopes' objects: indexes and markers first, archives last, as for the shared cache. A run of the
 * scope's pull request that writes meanwhile keeps what it wrote again since the plan (the guard); what it writes
 * new was never a candidate.
 */
export function executeScopePrune(plan: ScopePrunePlan, admin: PruneAdmin): Promise<PruneResult> {
  const folder = `${scopesPrefix(plan.prefix)}/`
  const { candidates, seen } = plan
  const guard = new DeletionGuard({
    admin,
    documents: folder,
    objects: folder,
    referencesOf: () => Promise.resolve([]),
    seen,
  })
  return executePrune(
    { prefix: scopesPrefix(plan.prefix), listed: seen.size, inUse: 0, recent: 0, foreign: 0, candidates, seen },
    admin,
    guard,
  )
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
