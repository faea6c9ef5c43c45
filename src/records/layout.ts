import { runsPrefix } from '../bucket/layout.js'

/**
 * Where run records and the insights' day roll-ups live: everything under `[<prefix>/].scipio-s3-cache-runs/`.
 *
 * - a record: `<runs>/<yyyy>/<mm>/<dd>/<run id>-<attempt>-<job>-<via>-<random>.json`, in the folder of the UTC day
 *   its run ended (the moment it is written);
 * - a day's roll-up: `<runs>/rollups/<yyyy>-<mm>-<dd>.json`, apart from the day folders so that a listing of days
 *   never pages through roll-ups, and one listing of `rollups/` says which days have one.
 *
 * Nothing a restore reads is in this folder, and a producer's listing of its prefix starts after it (save/heal.ts,
 * bucket/layout.ts `afterRunsFolder`).
 */

/** A UTC day as `yyyy-mm-dd`. */
export type Day = string

export function dayOf(time: Date): Day {
  return time.toISOString().slice(0, 10)
}

/** `<runs>/<yyyy>/<mm>/<dd>/`: the folder of one day's records. */
export function dayFolder(prefix: string, day: Day): string {
  const [yyyy, mm, dd] = day.split('-')
  return `${runsPrefix(prefix)}/${yyyy}/${mm}/${dd}/`
}

/** `<runs>/<yyyy>/`: the folder of one year's day folders. */
export function yearFolder(prefix: string, year: string): string {
  return `${runsPrefix(prefix)}/${year}/`
}

export function recordKey(prefix: string, day: Day, name: string): string {
  return `${dayFolder(prefix, day)}${name}.json`
}

/** The day a record's key is filed under, or undefined for a key that is not a record's. */
export function dayOfRecordKey(prefix: string, key: string): Day | undefined {
  const folder = `${runsPrefix(prefix)}/`
  if (!key.startsWith(folder)) return undefined
  const m = /^(\d{4})\/(\d{2})\/(\d{2})\/[^/]+\.json$/.exec(key.slice(folder.length))
  return m ? `${m[1]}-${m[2]}-${m[3]}` : undefined
}

/** `<runs>/rollups/` */
export function rollupsFolder(prefix: string): string {
  return `${runsPrefix(prefix)}/rollups/`
}

export function rollupKey(prefix: string, day: Day): string {
  return `${rollupsFolder(prefix)}${day}.json`
}

/** The day of a roll-up's key, or undefined for any other key. */
export function dayOfRollupKey(prefix: string, key: string): Day | undefined {
  const folder = rollupsFolder(prefix)
  if (!key.startsWith(folder)) return undefined
  const m = /^(\d{4}-\d{2}-\d{2})\.json$/.exec(key.slice(folder.length))
  return m?.[1]
}
