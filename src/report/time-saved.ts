import type { RestoreOutcome } from '../restore/outcome.js'

/** What the restored frameworks spared this run, from the build times producers recorded in the indexes (bucket/build-time.ts). */

export interface AvoidedBuild {
  restored: number
  /** Restored targets whose index entry records a build time. */
  measured: number
  avoidedMs: number
}

export function avoidedBuild(outcome: RestoreOutcome | undefined): AvoidedBuild {
  const restored = (outcome?.targets ?? []).filter((t) => t.result === 'restored')
  const measured = restored.filter((t) => t.entry?.buildMs !== undefined)
  return {
    restored: restored.length,
    measured: measured.length,
    avoidedMs: measured.reduce((sum, t) => sum + (t.entry?.buildMs ?? 0), 0),
  }
}

/** "38 min", "1 h 5 min", "21 s", "0.4 s". */
export function formatDuration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  if (s < 120) return `${s} s`
  const min = Math.round(s / 60)
  if (min < 120) return `${min} min`
  return `${Math.floor(min / 60)} h ${min % 60} min`
}

/**
 * "7 frameworks restored in 2.1 s instead of about 38 min of Scipio builds (...)", or undefined when no
 * restored target has a recorded build time (indexes written before producers recorded it).
 */
export function avoidedBuildText(
  outcome: RestoreOutcome | undefined,
  restoreMs: number | undefined,
): string | undefined {
  const a = avoidedBuild(outcome)
  if (a.measured === 0) return undefined
  const took = restoreMs !== undefined ? ` in ${formatDuration(restoreMs)}` : ''
  const unmeasured = a.restored - a.measured
  return (
    `${a.restored} frameworks restored${took} instead of about ${formatDuration(a.avoidedMs)} of Scipio builds ` +
    `(the producer's measurement: its Scipio build time divided among the targets it built` +
    `${unmeasured > 0 ? `; ${unmeasured} restored frameworks have no recorded build time and are not counted` : ''}).`
  )
}
