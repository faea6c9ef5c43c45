import { MetaFolder } from '../constants.js'
import { parseIndex } from '../bucket/cache-index.js'
import { manifestArchiveKeys } from '../bucket/set-manifest.js'
import { StorageError } from '../errors.js'
import type { KeyPlan } from '../keys/keys.js'
import { probeObjectKey, scopePrefix, scopesPrefix } from '../bucket/layout.js'
import { pinRecordObjectKey } from '../bucket/pin-record.js'
import { formatBytes } from '../report/report.js'
import type { DeleteFailure, ListedObject } from '../storage/s3-admin.js'
import { getJson, type Storage } from '../storage/index.js'

/**
 * Housekeeping: which objects under the prefix no kept Package.resolved uses. Only objects of this
 * project's layout are ever candidates; anything else under the prefix is left alone.
 */

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
}

export interface PruneAdmin {
  list(prefix: string): Promise<ListedObject[]>
  delete(keys: string[]): Promise<DeleteFailure[]>
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
  if (new RegExp(`^${p}[^/.][^/]*/${hex64}/${hex64}\\.(tar\\.(zst|gz)|aar)$`).test(key)) return { kind: 'archive' }
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
  const objects = await input.admin.list(listPrefix(prefix))
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
  return { prefix, listed: objects.length, inUse, recent, foreign: objects.length - ours.length, candidates }
}

/** Indexes and markers go first, archives last: no index ever names an archive that is already gone. */
export async function executePrune(
  plan: PrunePlan,
  admin: PruneAdmin,
): Promise<{ deleted: number; failures: DeleteFailure[] }> {
  const meta = plan.candidates.filter((c) => c.kind !== 'archive').map((c) => c.key)
  const archives = plan.candidates.filter((c) => c.kind === 'archive').map((c) => c.key)
  const failures = await admin.delete(meta)
  if (failures.length > 0) return { deleted: meta.length - failures.length, failures }
  const archiveFailures = await admin.delete(archives)
  return { deleted: meta.length + archives.length - archiveFailures.length, failures: archiveFailures }
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
  return { prefix: input.prefix, scopes, candidates: candidates.sort((a, b) => (a.key < b.key ? -1 : 1)) }
}

/** Deletes the scopes' objects: indexes and markers first, archives last, as for the shared cache. */
export function executeScopePrune(
  plan: ScopePrunePlan,
  admin: PruneAdmin,
): Promise<{ deleted: number; failures: DeleteFailure[] }> {
  const listed = plan.candidates.length
  return executePrune(
    { prefix: scopesPrefix(plan.prefix), listed, inUse: 0, recent: 0, foreign: 0, candidates: plan.candidates },
    admin,
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
