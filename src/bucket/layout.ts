import { MetaFolder, RunsFolder, ScopesFolder } from '../constants.js'
import { completeObjectKey, indexObjectKey, type ArchiveFormat, type KeyPlan } from '../keys/keys.js'

/**
 * Where a framework's archive lives in the bucket: `[<prefix>/]<Target>/<Scipio key>/<SHA-256>.<format>`, named
 * by its own bytes, so a name never stands for two contents however many producers write at once (builds are
 * not reproducible). Releases before it wrote `[<prefix>/]<Target>/<Scipio key>.<format>`; readers still accept
 * those in old indexes. The fixed `.aar` name is scipio-s3-storage's own (interop/scipio-s3-storage.ts), so both
 * tools find each other's objects; indexes point at an immutable copy of it. Indexes, completion markers and pin
 * records live under `.scipio-s3-cache/` (keys/keys.ts, pin-record.ts).
 *
 * A scope (inputs/scope.ts) is a second layout of the same shape under `[<prefix>/].scipio-s3-cache-scopes/<scope>`:
 * its archives, indexes, markers, pin records and probe all live there, so a role that may write only
 * `<prefix>/.scipio-s3-cache-scopes/*` can run a scoped producer. A scoped run reads its scope's layout first and the
 * shared one second; it writes into its scope only. Its indexes and markers may point at the shared cache's archives
 * too (what it restored from there), never the other way round: the shared cache's documents are parsed with the
 * shared prefix alone, so nothing a scope holds can enter a shared index.
 */

export const AarFormat = 'aar' as const
export type AarFormat = typeof AarFormat

function withPrefix(prefix: string, key: string): string {
  return prefix ? `${prefix}/${key}` : key
}

/** The name of an archive with these bytes: what new index entries point at. */
export function contentObjectKey(
  prefix: string,
  targetName: string,
  key: string,
  sha256: string,
  format: ArchiveFormat | AarFormat,
): string {
  return withPrefix(prefix, `${targetName}/${key}/${sha256}.${format}`)
}

/** The one object a store that ignores conditional writes is left with by the probe (bucket/shared-document.ts). */
export function probeObjectKey(prefix: string): string {
  return withPrefix(prefix, `${MetaFolder}/probe`)
}

/** The fixed name of earlier releases: its bytes may be replaced by a concurrent writer, so no new entry uses it. */
export function archiveObjectKey(prefix: string, targetName: string, key: string, format: ArchiveFormat): string {
  return withPrefix(prefix, `${targetName}/${key}.${format}`)
}

export function aarObjectKey(prefix: string, targetName: string, key: string): string {
  return withPrefix(prefix, `${targetName}/${key}.aar`)
}

/** Where one layout's objects live, and the keys of this run's documents there. */
export interface Layout {
  /** The key prefix of the layout's own objects. */
  prefix: string
  /** Prefixes of the archives its documents may point at: its own first, then (for a scope) the shared cache's. */
  archivePrefixes: readonly string[]
  /** The run's key plan with this layout's index and marker keys. */
  plan: KeyPlan
  /** The scope's name; absent for the shared cache. */
  scope?: string
}

/** The folder of every scope: `[<prefix>/].scipio-s3-cache-scopes`. */
export function scopesPrefix(prefix: string): string {
  return withPrefix(prefix, ScopesFolder)
}

/** `[<prefix>/].scipio-s3-cache-runs`: the run records and the insights' day roll-ups (records/layout.ts). */
export function runsPrefix(prefix: string): string {
  return withPrefix(prefix, RunsFolder)
}

/**
 * A key after every key in the runs folder and before every other key under the prefix that could matter: a
 * listing that starts after it (ListObjectsV2's StartAfter) leaves out every record and roll-up. The folder's name
 * sorts before everything else this project writes under the prefix ('-' before '/', '.' before letters and
 * digits), and `0` follows `/` in byte order; only a key spelled exactly like it, which nothing here writes, is
 * left out with them.
 */
export function afterRunsFolder(prefix: string): string {
  return `${runsPrefix(prefix)}0`
}

export function scopePrefix(prefix: string, scope: string): string {
  return `${scopesPrefix(prefix)}/${scope}`
}

export function sharedLayout(prefix: string, plan: KeyPlan): Layout {
  return { prefix, archivePrefixes: [prefix], plan }
}

/** The scope's layout, from the shared plan (same package and set keys, other object keys). */
export function scopeLayout(prefix: string, scope: string, shared: KeyPlan): Layout {
  const own = scopePrefix(prefix, scope)
  return {
    prefix: own,
    archivePrefixes: [own, prefix],
    scope,
    plan: {
      packages: shared.packages.map((p) => ({ ...p, indexKey: indexObjectKey(own, p.packageKey) })),
      setKey: shared.setKey,
      completeKey: completeObjectKey(own, shared.setKey),
    },
  }
}
