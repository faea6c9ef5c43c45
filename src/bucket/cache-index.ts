import { isBuildMs } from './build-time.js'
import { Formats } from '../constants.js'
import { frameworkName, isSafeTargetName } from '../keys/frameworks.js'
import { isRecord } from '../json.js'
import { scipioKey as keyOf, type ArchiveFormat } from '../keys/keys.js'
import { archiveObjectKey } from './layout.js'
import type { Pin } from '../keys/resolved.js'
import { AarFormat, aarObjectKey } from './layout.js'

/**
 * The objects that tie a package key to its archives. A producer writes an index only after every
 * archive it lists is stored, so a reader never follows an index to nothing.
 */

export interface IndexEntry {
  targetName: string
  scipioKey: string
  format: ArchiveFormat | AarFormat
  key: string
  size: number
  sha256: string
  /** Base64 of the VersionFile, for an object that lacks it (scipio-s3-storage's `.aar`, see scipio-s3-storage.ts). */
  versionFile?: string
  /** How long the producer's Scipio took to build it (ms; see build-time.ts). Absent in older indexes. */
  buildMs?: number
}

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

/**
 * One entry of `targets` (our archives) or of `aarTargets` (scipio-s3-storage's `.aar` objects, which lack the
 * VersionFile, so the entry keeps its bytes: see scipio-s3-storage.ts). Earlier readers ignore `aarTargets`.
 */
function parseEntry(raw: unknown, label: string, prefix: string, aar: boolean): IndexEntry {
  if (!isRecord(raw)) throw new Error(`${label} is not an object`)
  const { targetName, scipioKey, format, key, size, sha256, versionFile } = raw
  if (typeof targetName !== 'string' || !isSafeTargetName(targetName)) throw new Error(`${label} has an unsafe name`)
  if (typeof scipioKey !== 'string' || !hex64.test(scipioKey)) throw new Error(`${targetName}: bad scipioKey`)
  if (aar && format !== AarFormat) throw new Error(`${targetName}: the aar list holds another format`)
  if (!aar && format !== 'tar.zst' && format !== 'tar.gz') throw new Error(`${targetName}: unknown format`)
  if (
    aar
      ? key !== aarObjectKey(prefix, targetName, scipioKey)
      : key !== archiveObjectKey(prefix, targetName, scipioKey, format as ArchiveFormat)
  ) {
    throw new Error(
      `${targetName}: the ${aar ? '.aar key is not where scipio-s3-storage puts it' : 'archive key is not where this layout puts it'}`,
    )
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) throw new Error(`${targetName}: bad size`)
  if (typeof sha256 !== 'string' || !hex64.test(sha256)) throw new Error(`${targetName}: bad sha256`)
  if (aar && (typeof versionFile !== 'string' || keyOf(Buffer.from(versionFile, 'base64')) !== scipioKey)) {
    throw new Error(`${targetName}: the VersionFile kept for the .aar does not hash to its scipioKey`)
  }
  return {
    targetName,
    scipioKey,
    format: format as IndexEntry['format'],
    key: key as string,
    size,
    sha256,
    ...(aar ? { versionFile: versionFile as string } : {}),
    // Optional and only informative: a bad value is dropped, the entry stays usable.
    ...(isBuildMs(raw.buildMs) ? { buildMs: raw.buildMs } : {}),
  }
}

/** Validates an index read from storage; anything unexpected makes the whole index unusable. */
export function parseIndex(value: unknown, prefix: string, expectedPackageKey: string): PackageIndex {
  if (!isRecord(value) || value.schema !== Formats.index) throw new Error('not an index of this format')
  if (value.packageKey !== expectedPackageKey) throw new Error('the index names another package key')
  if (!Array.isArray(value.targets)) throw new Error("'targets' is not a list")
  if (value.aarTargets !== undefined && !Array.isArray(value.aarTargets)) throw new Error("'aarTargets' is not a list")
  const targets = [
    ...value.targets.map((raw, i) => parseEntry(raw, `target ${i + 1}`, prefix, false)),
    ...((value.aarTargets as unknown[] | undefined) ?? []).map((raw, i) =>
      parseEntry(raw, `aar target ${i + 1}`, prefix, true),
    ),
  ]
  const names = new Set(targets.map((t) => frameworkName(t.targetName)))
  if (names.size !== targets.length) throw new Error('two targets share one framework name')
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

/** The index as stored: entries of scipio-s3-storage's `.aar` objects go in `aarTargets`, which earlier readers ignore. */
export function indexDocument(index: PackageIndex): Record<string, unknown> {
  const aar = index.targets.filter((t) => t.format === AarFormat)
  const { targets, ...rest } = index
  return { ...rest, targets: targets.filter((t) => t.format !== AarFormat), ...(aar.length ? { aarTargets: aar } : {}) }
}
