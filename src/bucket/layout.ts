import { MetaFolder } from '../constants.js'
import type { ArchiveFormat } from '../keys/keys.js'

/**
 * Where a framework's archive lives in the bucket: `[<prefix>/]<Target>/<Scipio key>/<SHA-256>.<format>`, named
 * by its own bytes, so a name never stands for two contents however many producers write at once (builds are
 * not reproducible). Releases before it wrote `[<prefix>/]<Target>/<Scipio key>.<format>`; readers still accept
 * those in old indexes. The fixed `.aar` name is scipio-s3-storage's own (interop/scipio-s3-storage.ts), so both
 * tools find each other's objects; indexes point at an immutable copy of it. Indexes, completion markers and pin
 * records live under `.scipio-s3-cache/` (keys/keys.ts, pin-record.ts).
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
