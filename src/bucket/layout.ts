import type { ArchiveFormat } from '../keys/keys.js'

/**
 * Where a framework's archive lives in the bucket: `[<prefix>/]<Target>/<Scipio key>.<format>`. The `.aar`
 * name is scipio-s3-storage's own (interop/scipio-s3-storage.ts), so both tools find each other's objects.
 * Indexes, completion markers and pin records live under `.scipio-s3-cache/` (keys/keys.ts, pin-record.ts).
 */

export const AarFormat = 'aar' as const
export type AarFormat = typeof AarFormat

function withPrefix(prefix: string, key: string): string {
  return prefix ? `${prefix}/${key}` : key
}

export function archiveObjectKey(prefix: string, targetName: string, key: string, format: ArchiveFormat): string {
  return withPrefix(prefix, `${targetName}/${key}.${format}`)
}

export function aarObjectKey(prefix: string, targetName: string, key: string): string {
  return withPrefix(prefix, `${targetName}/${key}.aar`)
}
