import { isBuildMs } from './build-time.js'
import { Formats } from '../constants.js'
import { frameworkName, isSafeTargetName, parseVersionFile, readDependencyChecksums } from '../keys/frameworks.js'
import { isRecord } from '../json.js'
import { scipioKey as keyOf, type ArchiveFormat } from '../keys/keys.js'
import type { Pin } from '../keys/resolved.js'
import type { LocalFramework } from '../keys/frameworks.js'
import { AarFormat, aarObjectKey, archiveObjectKey, contentObjectKey } from './layout.js'

/**
 * The objects that tie a package key to its archives. A producer writes an index only after every
 * archive it lists is stored, so a reader never follows an index to nothing.
 */

/**
 * One of the `dependencyCacheKeyChecksums` of the VersionFile an entry's archive holds: a direct dependency's
 * target and Scipio key, plus (for explanations only) the package and version the producer had for it.
 */
export interface DependencyKey {
  targetName: string
  checksum: string
  package?: string
  version?: string
}

/**
 * Entries kept per target: one per dependency context (the keys of its dependencies), the most recently stored
 * first. Bounded so that an index, and the set manifest every consumer reads, stays small (docs/how-it-works.md).
 */
export const MaxContextsPerTarget = 4

export interface IndexEntry {
  targetName: string
  scipioKey: string
  /**
   * The dependency keys inside this entry's VersionFile, sorted as Scipio sorts them; `[]` for a target without
   * dependencies. Absent in entries written by releases before dependency-aware restores: unknown.
   */
  dependencyCacheKeyChecksums?: DependencyKey[]
  format: ArchiveFormat | AarFormat
  key: string
  size: number
  sha256: string
  /** Base64 of the VersionFile, for an object that lacks it (scipio-s3-storage's `.aar`, see scipio-s3-storage.ts). */
  versionFile?: string
  /** How long the producer's Scipio took to build it (ms; see build-time.ts). Absent in older indexes. */
  buildMs?: number
  /** How the archive was compressed (archive.ts `compressionLabel`): repack skips what it already packed. */
  compression?: string
}

/**
 * Formats that releases before it cannot read: their entries are kept in the index's `laterFormats` list, which
 * those releases ignore (they see no entry, a miss, instead of an index they reject whole: docs/storage.md).
 */
export const laterFormats: readonly string[] = ['code.tar.zst']

const isLaterFormat = (format: string) => laterFormats.includes(format)

export interface PackageIndex {
  schema: typeof Formats.index
  packageKey: string
  package: { identity: string; revision?: string; version?: string }
  createdAt: string
  targets: IndexEntry[]
}

export interface CompleteMarker {
  schema: typeof Formats.complete
  setKey: string
  createdAt: string
  targets: { targetName: string; scipioKey: string }[]
}

const hex64 = /^[0-9a-f]{64}$/

/** Where an entry is listed: the list decides which formats it may hold. */
type EntryList = 'targets' | 'aar' | 'later'

/**
 * One entry of `targets` (our archives), of `aarTargets` (scipio-s3-storage's `.aar` objects, which lack the
 * VersionFile, so the entry keeps its bytes: see scipio-s3-storage.ts) or of `laterFormats`. Earlier readers
 * ignore `aarTargets` and `laterFormats`.
 */
function parseEntry(raw: unknown, label: string, prefixes: readonly string[], list: EntryList): IndexEntry {
  const aar = list === 'aar'
  if (!isRecord(raw)) throw new Error(`${label} is not an object`)
  const { targetName, scipioKey, format, key, size, sha256, versionFile } = raw
  if (typeof targetName !== 'string' || !isSafeTargetName(targetName)) throw new Error(`${label} has an unsafe name`)
  if (typeof scipioKey !== 'string' || !hex64.test(scipioKey)) throw new Error(`${targetName}: bad scipioKey`)
  if (aar && format !== AarFormat) throw new Error(`${targetName}: the aar list holds another format`)
  if (list === 'targets' && format !== 'tar.zst' && format !== 'tar.gz')
    throw new Error(`${targetName}: unknown format`)
  if (list === 'later' && (typeof format !== 'string' || !isLaterFormat(format)))
    throw new Error(`${targetName}: the laterFormats list holds a format earlier releases read, or an unknown one`)
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) throw new Error(`${targetName}: bad size`)
  if (typeof sha256 !== 'string' || !hex64.test(sha256)) throw new Error(`${targetName}: bad sha256`)
  const legacyKey = (prefix: string) =>
    aar
      ? aarObjectKey(prefix, targetName, scipioKey)
      : archiveObjectKey(prefix, targetName, scipioKey, format as ArchiveFormat)
  // The content-addressed name carries the SHA-256: it must be the entry's.
  const where = (prefix: string) =>
    key === contentObjectKey(prefix, targetName, scipioKey, sha256, format as IndexEntry['format']) ||
    key === legacyKey(prefix)
  if (!prefixes.some(where)) {
    throw new Error(
      aar
        ? `${targetName}: the .aar key is not where scipio-s3-storage puts it, nor a copy named by its SHA-256`
        : `${targetName}: the archive key is not where this layout puts it, or names other bytes`,
    )
  }
  if (aar && (typeof versionFile !== 'string' || keyOf(Buffer.from(versionFile, 'base64')) !== scipioKey)) {
    throw new Error(`${targetName}: the VersionFile kept for the .aar does not hash to its scipioKey`)
  }
  return {
    targetName,
    scipioKey,
    format: format as IndexEntry['format'],
    key: key as string, // equal to one of the names above
    size,
    sha256,
    ...(aar ? { versionFile: versionFile as string } : {}),
    // Optional and only informative: a bad value is dropped, the entry stays usable.
    ...(isBuildMs(raw.buildMs) ? { buildMs: raw.buildMs } : {}),
    ...(typeof raw.compression === 'string' && raw.compression.length <= 64 ? { compression: raw.compression } : {}),
    ...dependencyField(raw.dependencyCacheKeyChecksums, aar ? (versionFile as string) : undefined),
  }
}

/**
 * An entry's dependency keys as stored; for an older `.aar` entry, read from the VersionFile the index keeps. A
 * malformed list is dropped: the entry is then one whose dependencies are unknown (restore/choose.ts).
 */
function dependencyField(
  value: unknown,
  versionFile: string | undefined,
): { dependencyCacheKeyChecksums?: DependencyKey[] } {
  if (value === undefined) {
    if (versionFile === undefined) return {}
    const parsed = parseVersionFile(Buffer.from(versionFile, 'base64'))
    return parsed ? { dependencyCacheKeyChecksums: parsed.dependencies ?? [] } : {}
  }
  const keys = readDependencyChecksums(value)
  if (!keys || !Array.isArray(value)) return {}
  return {
    dependencyCacheKeyChecksums: keys.map((key, i) => {
      const raw = value[i] as Record<string, unknown>
      return {
        ...key,
        ...(typeof raw.package === 'string' ? { package: raw.package } : {}),
        ...(typeof raw.version === 'string' ? { version: raw.version } : {}),
      }
    }),
  }
}

/**
 * Validates an index read from storage; anything unexpected makes the whole index unusable. Its archives must live
 * under `prefix` (a scope's documents may also point at the shared cache: bucket/layout.ts).
 */
export function parseIndex(
  value: unknown,
  prefix: string | readonly string[],
  expectedPackageKey: string,
): PackageIndex {
  const prefixes = typeof prefix === 'string' ? [prefix] : prefix
  if (!isRecord(value) || value.schema !== Formats.index) throw new Error('not an index of this format')
  if (value.packageKey !== expectedPackageKey) throw new Error('the index names another package key')
  if (!Array.isArray(value.targets)) throw new Error("'targets' is not a list")
  if (value.aarTargets !== undefined && !Array.isArray(value.aarTargets)) throw new Error("'aarTargets' is not a list")
  if (value.contexts !== undefined && !Array.isArray(value.contexts)) throw new Error("'contexts' is not a list")
  if (value.laterFormats !== undefined && !Array.isArray(value.laterFormats))
    throw new Error("'laterFormats' is not a list")
  const primary = [
    ...value.targets.map((raw, i) => parseEntry(raw, `target ${i + 1}`, prefixes, 'targets')),
    ...((value.aarTargets as unknown[] | undefined) ?? []).map((raw, i) =>
      parseEntry(raw, `aar target ${i + 1}`, prefixes, 'aar'),
    ),
  ]
  const names = new Set(primary.map((t) => frameworkName(t.targetName)))
  if (names.size !== primary.length) throw new Error('two targets share one framework name')
  const contexts = ((value.contexts as unknown[] | undefined) ?? []).map((raw, i) =>
    parseEntry(raw, `context ${i + 1}`, prefixes, isRecord(raw) && raw.format === AarFormat ? 'aar' : 'targets'),
  )
  const later = ((value.laterFormats as unknown[] | undefined) ?? []).map((raw, i) =>
    parseEntry(raw, `later-format entry ${i + 1}`, prefixes, 'later'),
  )
  const listed = new Set(primary.map((t) => `${t.targetName}\0${t.scipioKey}`))
  const named = new Set(primary.map((t) => t.targetName))
  for (const entry of contexts) {
    const id = `${entry.targetName}\0${entry.scipioKey}`
    if (!named.has(entry.targetName)) throw new Error(`${entry.targetName}: a context of a target the index lacks`)
    if (listed.has(id)) throw new Error(`${entry.targetName}: one key listed twice`)
    listed.add(id)
  }
  for (const entry of later) {
    const id = `${entry.targetName}\0${entry.scipioKey}`
    if (listed.has(id)) throw new Error(`${entry.targetName}: one key listed twice`)
    listed.add(id)
  }
  // One framework folder per target name, whichever list names it.
  const owners = new Map<string, string>()
  for (const entry of [...primary, ...later]) {
    const name = frameworkName(entry.targetName)
    if ((owners.get(name) ?? entry.targetName) !== entry.targetName)
      throw new Error('two targets share one framework name')
    owners.set(name, entry.targetName)
  }
  // Each target's entries together, most recent first: those in a later format, then the primary, then the other
  // contexts (the order `indexDocument` writes back).
  const targets = [...later, ...primary, ...contexts].sort((a, b) =>
    a.targetName < b.targetName ? -1 : a.targetName > b.targetName ? 1 : 0,
  )
  const pkg = isRecord(value.package) ? value.package : {}
  return {
    schema: Formats.index,
    packageKey: expectedPackageKey,
    package: {
      identity: typeof pkg.identity === 'string' ? pkg.identity : '',
      ...(typeof pkg.revision === 'string' ? { revision: pkg.revision } : {}),
      ...(typeof pkg.version === 'string' ? { version: pkg.version } : {}),
    },
    createdAt: typeof value.createdAt === 'string' ? value.createdAt : '',
    targets,
  }
}

export function newIndex(packageKey: string, pin: Pin, targets: IndexEntry[], now: Date): PackageIndex {
  return {
    schema: Formats.index,
    packageKey,
    package: {
      identity: pin.identity,
      ...(pin.revision ? { revision: pin.revision } : {}),
      ...(pin.version ? { version: pin.version } : {}),
    },
    createdAt: now.toISOString(),
    targets: [...targets].sort((a, b) => (a.targetName < b.targetName ? -1 : 1)),
  }
}

/**
 * An entry with the dependency keys of the framework it stores, each labelled with the package and version
 * `ownerOf` gives for the dependency (only explanations read the labels).
 */
export function withDependencyKeys(
  entry: IndexEntry,
  framework: Pick<LocalFramework, 'dependencies'>,
  ownerOf: (targetName: string) => Pin | undefined,
): IndexEntry {
  const dependencyCacheKeyChecksums = (framework.dependencies ?? []).map((dep) => {
    const pin = ownerOf(dep.targetName)
    const version = pin?.version ?? pin?.revision?.slice(0, 10) ?? pin?.branch
    return { ...dep, ...(pin ? { package: pin.identity } : {}), ...(version ? { version } : {}) }
  })
  return { ...entry, dependencyCacheKeyChecksums }
}

type TargetId = Pick<IndexEntry, 'targetName' | 'scipioKey' | 'dependencyCacheKeyChecksums'>

function findEntry(index: PackageIndex | undefined, target: TargetId): IndexEntry | undefined {
  return index?.targets.find((t) => t.targetName === target.targetName && t.scipioKey === target.scipioKey)
}

/**
 * Whether `index` lists every one of `targets` with the same Scipio key (usable unless `damaged` says otherwise),
 * with its dependency keys when the target has them (an entry of an older release gains them once).
 */
export function listsAll(
  index: PackageIndex | undefined,
  targets: readonly TargetId[],
  damaged: (entry: IndexEntry) => boolean = () => false,
): boolean {
  if (!index) return false
  return targets.every((target) => {
    const entry = findEntry(index, target)
    if (entry === undefined || damaged(entry)) return false
    return entry.dependencyCacheKeyChecksums !== undefined || target.dependencyCacheKeyChecksums === undefined
  })
}

/** The stored entry, with the dependency keys of ours when it lacks them (same key: same VersionFile bytes). */
function keptEntry(kept: IndexEntry, ours: IndexEntry): IndexEntry {
  if (kept.dependencyCacheKeyChecksums !== undefined || ours.dependencyCacheKeyChecksums === undefined) return kept
  return { ...kept, dependencyCacheKeyChecksums: ours.dependencyCacheKeyChecksums }
}

/**
 * The index to store over `stored` when this producer has `ours`: the stored entries of every target it does not
 * have (another producer's work is never dropped), and for each of its targets first the stored entry when it has
 * the same Scipio key and is not `damaged` (its object is immutable; consumers may already hold it), else ours,
 * then the stored entries of its other dependency contexts, up to `MaxContextsPerTarget` in all (the most recent
 * kept). undefined when `stored` already is that: nothing to write.
 */
export function mergeIndex(
  stored: PackageIndex | undefined,
  ours: PackageIndex,
  damaged: (entry: IndexEntry) => boolean = () => false,
): PackageIndex | undefined {
  if (!stored) return ours
  if (listsAll(stored, ours.targets, damaged)) return undefined
  const names = new Set(ours.targets.map((t) => frameworkName(t.targetName)))
  const others = stored.targets.filter((t) => !names.has(frameworkName(t.targetName)))
  const mine = ours.targets.flatMap((t) => {
    const kept = findEntry(stored, t)
    const first = kept && !damaged(kept) ? keptEntry(kept, t) : t
    const earlier = stored.targets.filter(
      (s) => s.targetName === t.targetName && s.scipioKey !== t.scipioKey && !damaged(s),
    )
    return [first, ...earlier].slice(0, MaxContextsPerTarget)
  })
  return {
    ...ours,
    targets: [...others, ...mine].sort((a, b) =>
      a.targetName < b.targetName ? -1 : a.targetName > b.targetName ? 1 : 0,
    ),
  }
}

/** Same archives listed (ignoring dates and build times): nothing to rewrite. */
export function sameTargets(a: PackageIndex | undefined, b: PackageIndex): boolean {
  if (!a || a.targets.length !== b.targets.length) return false
  const key = (t: IndexEntry) => `${t.targetName}\0${t.scipioKey}\0${t.key}\0${t.size}\0${t.sha256}`
  const left = new Set(a.targets.map(key))
  return b.targets.every((t) => left.has(key(t)))
}

export function parseCompleteMarker(value: unknown, expectedSetKey: string): CompleteMarker {
  if (
    !isRecord(value) ||
    value.schema !== Formats.complete ||
    value.setKey !== expectedSetKey ||
    !Array.isArray(value.targets)
  ) {
    throw new Error('not a completion marker of this format')
  }
  const targets = value.targets.map((raw) => {
    if (
      !isRecord(raw) ||
      typeof raw.targetName !== 'string' ||
      typeof raw.scipioKey !== 'string' ||
      !hex64.test(raw.scipioKey)
    ) {
      throw new Error('bad target in the completion marker')
    }
    return { targetName: raw.targetName, scipioKey: raw.scipioKey }
  })
  return { schema: Formats.complete, setKey: expectedSetKey, createdAt: String(value.createdAt ?? ''), targets }
}

/**
 * The index as stored: every entry in a later format (`code.tar.zst`) in `laterFormats`; of the others, each
 * target's most recent entry in `targets` (ours) or `aarTargets` (scipio-s3-storage's `.aar` objects), its other
 * dependency contexts in `contexts`. Earlier readers ignore all but `targets`, so they see one entry per target
 * that they can read, as they always did, or none.
 */
export function indexDocument(index: PackageIndex): Record<string, unknown> {
  const { targets, ...rest } = index
  const seen = new Set<string>()
  const primary: IndexEntry[] = []
  const contexts: IndexEntry[] = []
  const later = targets.filter((t) => isLaterFormat(t.format))
  for (const entry of targets) {
    if (isLaterFormat(entry.format)) continue
    const name = frameworkName(entry.targetName)
    if (seen.has(name)) contexts.push(entry)
    else primary.push(entry)
    seen.add(name)
  }
  const aar = primary.filter((t) => t.format === AarFormat)
  return {
    ...rest,
    targets: primary.filter((t) => t.format !== AarFormat),
    ...(aar.length ? { aarTargets: aar } : {}),
    ...(contexts.length ? { contexts } : {}),
    ...(later.length ? { laterFormats: later } : {}),
  }
}
