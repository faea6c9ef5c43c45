import { type IndexEntry, type PackageIndex } from '../bucket/cache-index.js'
import { CancelledError, DiskFullError } from '../errors.js'

/** What a restore reports: each target's result and miss kind, and the misses a consumer could not get. */

/** restored: downloaded and placed; kept: already in place; available: stored (lookup-only); missed: must be built. */
export type RestoreResultKind = 'restored' | 'kept' | 'available' | 'missed'

/**
 * Why a target missed. Only `absent` (the store answered 404, or 403 where it hides missing keys) and `damaged`
 * (bytes that fail the size, SHA-256, VersionFile or entry-guard check) say the stored entry is bad, so that a
 * producer replaces it; `unavailable` (the time limit, a transient or configuration fault, a format or tool this
 * runner lacks) says nothing about it.
 */
export type MissKind = 'absent' | 'damaged' | 'unavailable'

export interface RestoredTarget {
  targetName: string
  package: string
  result: RestoreResultKind
  bytes: number
  ms: number
  entry?: IndexEntry
  reason?: string
  /** The scope whose archive this is; absent: the shared cache's (or nothing came from the cache). */
  scope?: string
  /** Set on every miss. */
  miss?: MissKind
  /** A miss because of a dependency: the change at the bottom of the cascade ("swift-log 1.6.1 → 1.6.2"). */
  cause?: string
}

/** Whether a restore miss found the stored entry itself gone or damaged: the only misses a producer replaces. */
export function entryIsBad(target: RestoredTarget): boolean {
  return target.result === 'missed' && (target.miss === 'absent' || target.miss === 'damaged')
}

export interface RestoreOutcome {
  /** Index per package key as read; save reuses them instead of asking again. */
  indexes: Map<string, PackageIndex>
  /** Packages with no usable index (never produced, or unreadable). */
  packagesMissing: string[]
  targets: RestoredTarget[]
  /** True when a producer marked this exact build complete and everything it listed is now in place. */
  complete: boolean
  /** The indexes came from the completion marker's manifest (none was read). */
  fromManifest?: boolean
  /**
   * Why the cache could not be read at all, when it could not: a configuration fault (credentials, region, bucket),
   * or every marker and index read refused (storage/refusals.ts). The command line's `restore` then exits 1.
   */
  unavailable?: string
  /** Cache errors (not plain misses), for `strict`. */
  problems: string[]
}

/** A target's miss reason once the restore's signal aborted: the time limit, a cancellation or a full disk. */
export function stoppedMiss(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason
  if (reason instanceof CancelledError) return 'cancelled'
  if (reason instanceof DiskFullError) return 'disk full'
  return 'cache time limit reached'
}

/** What a consumer could not get from the cache: packages with no index, and targets that missed. */
export function cacheMisses(outcome: RestoreOutcome): string[] {
  return [
    ...outcome.packagesMissing.map((p) => `${p} (package)`),
    ...outcome.targets.filter((t) => t.result === 'missed').map((t) => t.targetName),
  ]
}
