import { Formats } from '../constants.js'
import { missReasons, type MissReasonCode } from '../records/record.js'
import type { Day } from '../records/layout.js'
import { emptyDay, mergeDay, outcomeFields, percentile, type DayAggregate, type Outcomes } from './aggregate.js'
import type { DaysRead } from './read.js'
import { weekOf, type Window } from './window.js'

/** The aggregates of a window, as `insights --json` prints them and the page and the Markdown show them. */

export interface Totals extends Outcomes {
  producerRuns: number
  kept: number
  built: number
  uploaded: number
  bytesDown: number
  bytesUp: number
  /** Full hits over consumer runs; null without consumer runs. */
  hitRate: number | null
  /** Frameworks restored or kept, over those and the misses; null when there were none. */
  frameworkHitRate: number | null
  restoreP50Ms: number | null
  restoreP95Ms: number | null
}

export interface DayRow {
  day: Day
  runs: number
  consumerRuns: number
  fullHits: number
  partialHits: number
  noHits: number
  restored: number
  missed: number
  built: number
  bytesDown: number
  bytesUp: number
  restoreP50Ms: number | null
  restoreP95Ms: number | null
  /** Runs and misses per Xcode version this day. */
  xcode: { version: string; runs: number; missed: number }[]
}

export interface WeekRow {
  /** The Monday the week starts on. */
  week: Day
  /** Days of the week inside the window. */
  days: number
  savedMs: number
  buildMs: number
}

export interface FrameworkRow {
  name: string
  misses: number
  /** The reason it missed most often (the earlier in `missReasons` among equals). */
  reason: MissReasonCode
  reasons: Partial<Record<MissReasonCode, number>>
}

export interface SplitRow extends Outcomes {
  name: string
}

export interface Split {
  rows: SplitRow[]
  /** Names left out of `rows` (the fewest runs). */
  more: number
}

export interface InsightsReport {
  schema: typeof Formats.insights
  cache: string
  prefix: string
  window: { since: Day; until: Day; days: number }
  repository?: string
  reads: { records: number; rollups: number; rollupsWritten: number; unusable: number; failed: number }
  totals: Totals
  days: DayRow[]
  weeks: WeekRow[]
  reasons: { reason: MissReasonCode; misses: number }[]
  frameworks: FrameworkRow[]
  /** Misses the records counted but did not list by framework. */
  missesUnlisted: number
  xcode: { version: string; runs: number; missed: number; firstDay: Day; lastDay: Day }[]
  splits: { branch: Split; scope: Split; workflow: Split }
}

/** Rows kept in the frameworks and split tables. */
export const topRows = 15

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
const ratio = (part: number, whole: number) => (whole === 0 ? null : part / whole)

function outcomesOf(a: Outcomes): Outcomes {
  return Object.fromEntries(outcomeFields.map((f) => [f, a[f]])) as unknown as Outcomes
}

function dominant(byReason: Map<MissReasonCode, number>): MissReasonCode {
  let best: MissReasonCode = missReasons[0]
  for (const reason of missReasons) if ((byReason.get(reason) ?? 0) > (byReason.get(best) ?? 0)) best = reason
  return best
}

function dayRow(day: Day, a: DayAggregate): DayRow {
  return {
    day,
    runs: a.runs,
    consumerRuns: a.consumerRuns,
    fullHits: a.fullHits,
    partialHits: a.partialHits,
    noHits: a.noHits,
    restored: a.restored,
    missed: a.missed,
    built: a.built,
    bytesDown: a.bytesDown,
    bytesUp: a.bytesUp,
    restoreP50Ms: percentile(a.restoreMs, 0.5) ?? null,
    restoreP95Ms: percentile(a.restoreMs, 0.95) ?? null,
    xcode: [...a.xcode]
      .sort(([x], [y]) => byName(x, y))
      .map(([version, t]) => ({ version, runs: t.runs, missed: t.missed })),
  }
}

function split(map: Map<string, Outcomes>): Split {
  const rows = [...map]
    .map(([name, o]) => ({ name, ...outcomesOf(o) }))
    .sort((a, b) => b.runs - a.runs || byName(a.name, b.name))
  return { rows: rows.slice(0, topRows), more: Math.max(0, rows.length - topRows) }
}

/** The window's days, each merged over the repositories asked for (all, or `repository`). */
function selectDays(read: DaysRead, repository: string | undefined): [Day, DayAggregate][] {
  return [...read.days].map(([day, repositories]) => {
    const merged = emptyDay()
    for (const [name, aggregate] of repositories)
      if (repository === undefined || name === repository) mergeDay(merged, aggregate)
    return [day, merged]
  })
}

export interface ReportInput {
  read: DaysRead
  window: Window
  cache: string
  prefix: string
  repository?: string
}

export function buildReport(input: ReportInput): InsightsReport {
  const days = selectDays(input.read, input.repository)
  const all = emptyDay()
  for (const [, a] of days) mergeDay(all, a)

  const weeks = new Map<Day, WeekRow>()
  for (const [day, a] of days) {
    const week = weekOf(day)
    const row = weeks.get(week) ?? { week, days: 0, savedMs: 0, buildMs: 0 }
    row.days += 1
    row.savedMs += a.savedMs
    row.buildMs += a.buildMs
    weeks.set(week, row)
  }

  const xcode = new Map<string, InsightsReport['xcode'][number]>()
  for (const [day, a] of days) {
    for (const [version, t] of a.xcode) {
      const row = xcode.get(version) ?? { version, runs: 0, missed: 0, firstDay: day, lastDay: day }
      row.runs += t.runs
      row.missed += t.missed
      row.lastDay = day
      xcode.set(version, row)
    }
  }

  const frameworks = [...all.frameworks]
    .map(([name, byReason]) => ({
      name,
      misses: [...byReason.values()].reduce((n, c) => n + c, 0),
      reason: dominant(byReason),
      reasons: Object.fromEntries(missReasons.filter((r) => byReason.has(r)).map((r) => [r, byReason.get(r)!])),
    }))
    .sort((a, b) => b.misses - a.misses || byName(a.name, b.name))
    .slice(0, topRows)

  const { read } = input
  return {
    schema: Formats.insights,
    cache: input.cache,
    prefix: input.prefix,
    window: { since: input.window.since, until: input.window.until, days: input.window.days.length },
    ...(input.repository !== undefined ? { repository: input.repository } : {}),
    reads: {
      records: read.recordsRead,
      rollups: read.rollupsRead,
      rollupsWritten: read.rollupsWritten,
      unusable: read.unusable,
      failed: read.failed,
    },
    totals: {
      ...outcomesOf(all),
      producerRuns: all.producerRuns,
      kept: all.kept,
      built: all.built,
      uploaded: all.uploaded,
      bytesDown: all.bytesDown,
      bytesUp: all.bytesUp,
      hitRate: ratio(all.fullHits, all.consumerRuns),
      frameworkHitRate: ratio(all.restored + all.kept, all.restored + all.kept + all.missed),
      restoreP50Ms: percentile(all.restoreMs, 0.5) ?? null,
      restoreP95Ms: percentile(all.restoreMs, 0.95) ?? null,
    },
    days: days.map(([day, a]) => dayRow(day, a)),
    weeks: [...weeks.values()],
    reasons: missReasons.map((reason) => ({ reason, misses: all.reasons.get(reason) ?? 0 })),
    frameworks,
    missesUnlisted: all.missesUnlisted,
    xcode: [...xcode.values()].sort((a, b) => byName(a.firstDay, b.firstDay) || byName(a.version, b.version)),
    splits: { branch: split(all.branch), scope: split(all.scope), workflow: split(all.workflow) },
  }
}
