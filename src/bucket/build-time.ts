/**
 * Build time per target: a producer measures how long its Scipio build took and divides it among the targets
 * that build produced (Scipio's log gives no per-target times, and it writes VersionFiles only at the end).
 * The figure goes into the index beside each archive; a consumer adds up the figures of what it restored to
 * say which build time the cache spared it. It is the producer's measurement, on the producer's machine.
 */

/** Longest time accepted per target from an index (a week): anything larger is not a measurement. */
export const maxBuildMs = 7 * 24 * 3600 * 1000

export function isBuildMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= maxBuildMs
}

/** The build's wall time divided evenly among the targets it built. */
export function perTargetBuildMs(built: string[], buildMs: number | undefined): Map<string, number> {
  const out = new Map<string, number>()
  if (buildMs === undefined || built.length === 0) return out
  const each = Math.round(buildMs / built.length)
  for (const name of built) out.set(name, each)
  return out
}
