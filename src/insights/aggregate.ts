import { missReasons, type MissReasonCode, type RunRecord } from '../records/record.js'

/**
 * What the records of one day add up to, per repository: the unit a day's roll-up stores and the report merges.
 * Every figure is a sum, a count by name or the list of restore durations, so days and repositories merge exactly
 * (percentiles are taken from the merged list). Names from records (branches, workflows, frameworks) may be any
 * safe text, `__proto__` included, so they live in Maps, never as object keys.
 */

/** How runs went: the figures of every split (branch, scope, workflow) and of a day. */
export interface Outcomes {
  runs: number
  /** Runs that restored (consumer, consumer,producer, the restore sub-action, `restore`). */
  consumerRuns: number
  /** Consumer runs that missed nothing and built nothing. */
  fullHits: number
  /** Consumer runs that got some frameworks from the cache, not all. */
  partialHits: number
  /** Consumer runs that got nothing from the cache. */
  noHits: number
  /** Frameworks restored (and kept by Scipio). */
  restored: number
  /** Frameworks and whole packages missed. */
  missed: number
  /** The Scipio build time restored frameworks spared (the producers' measurement). */
  savedMs: number
  /** The Scipio build time spent. */
  buildMs: number
}

export interface XcodeTally {
  runs: number
  missed: number
}

export interface DayAggregate extends Outcomes {
  producerRuns: number
  kept: number
  built: number
  uploaded: number
  bytesDown: number
  bytesUp: number
  /** Every run's restore wall time, ascending. */
  restoreMs: number[]
  /** Misses by reason (every miss, listed in its record or not). */
  reasons: Map<MissReasonCode, number>
  /** Misses by framework (a target, or `<package> (package)`) and reason, as far as records list them. */
  frameworks: Map<string, Map<MissReasonCode, number>>
  /** Misses records counted but did not list one by one (records/record.ts keeps each under 2 KB). */
  missesUnlisted: number
  xcode: Map<string, XcodeTally>
  branch: Map<string, Outcomes>
  scope: Map<string, Outcomes>
  workflow: Map<string, Outcomes>
}

/** The name a split gives records that lack the field. */
export const noName = '(none)'

export function emptyOutcomes(): Outcomes {
  return {
    runs: 0,
    consumerRuns: 0,
    fullHits: 0,
    partialHits: 0,
    noHits: 0,
    restored: 0,
    missed: 0,
    savedMs: 0,
    buildMs: 0,
  }
}

export function emptyDay(): DayAggregate {
  return {
    ...emptyOutcomes(),
    producerRuns: 0,
    kept: 0,
    built: 0,
    uploaded: 0,
    bytesDown: 0,
    bytesUp: 0,
    restoreMs: [],
    reasons: new Map(),
    frameworks: new Map(),
    missesUnlisted: 0,
    xcode: new Map(),
    branch: new Map(),
    scope: new Map(),
    workflow: new Map(),
  }
}

export type ConsumerOutcome = 'full' | 'partial' | 'none'

/** A consumer run's outcome: a full hit missed and built nothing; no hit got nothing from the cache. */
export function consumerOutcome(record: RunRecord): ConsumerOutcome | undefined {
  if (!record.mode.includes('consumer')) return undefined
  const { restored, kept, missed, built } = record.counts
  if (missed === 0 && built === 0) return 'full'
  return restored + kept === 0 ? 'none' : 'partial'
}

export const outcomeFields = [
  'runs',
  'consumerRuns',
  'fullHits',
  'partialHits',
  'noHits',
  'restored',
  'missed',
  'savedMs',
  'buildMs',
] as const satisfies readonly (keyof Outcomes)[]

function recordOutcomes(record: RunRecord): Outcomes {
  const outcome = consumerOutcome(record)
  return {
    runs: 1,
    consumerRuns: outcome ? 1 : 0,
    fullHits: outcome === 'full' ? 1 : 0,
    partialHits: outcome === 'partial' ? 1 : 0,
    noHits: outcome === 'none' ? 1 : 0,
    restored: record.counts.restored,
    missed: record.counts.missed,
    savedMs: record.savedMs ?? 0,
    buildMs: record.ms.build ?? 0,
  }
}

function addOutcomes(into: Outcomes, from: Outcomes): void {
  for (const f of outcomeFields) into[f] += from[f]
}

function addNamed(map: Map<string, Outcomes>, name: string, from: Outcomes): void {
  let into = map.get(name)
  if (!into) map.set(name, (into = emptyOutcomes()))
  addOutcomes(into, from)
}

function addCounts<K>(into: Map<K, number>, key: K, count: number): void {
  into.set(key, (into.get(key) ?? 0) + count)
}

/** A framework's name in the report: the target, or `<package> (package)` for a package with no usable index. */
export function missName(miss: RunRecord['misses'][number]): string {
  return 'target' in miss ? miss.target : `${miss.package} (package)`
}

/** Adds one record to a day's aggregate. */
export function addRecord(day: DayAggregate, record: RunRecord): void {
  const outcomes = recordOutcomes(record)
  addOutcomes(day, outcomes)
  if (record.mode.includes('producer')) day.producerRuns += 1
  day.kept += record.counts.kept
  day.built += record.counts.built
  day.uploaded += record.counts.uploaded
  day.bytesDown += record.bytes.down
  day.bytesUp += record.bytes.up
  if (record.ms.restore !== undefined) insertSorted(day.restoreMs, record.ms.restore)
  for (const reason of missReasons) if (record.reasons[reason]) addCounts(day.reasons, reason, record.reasons[reason])
  for (const miss of record.misses) {
    const name = missName(miss)
    let byReason = day.frameworks.get(name)
    if (!byReason) day.frameworks.set(name, (byReason = new Map()))
    addCounts(byReason, miss.reason, 1)
  }
  day.missesUnlisted += record.missesOmitted ?? 0
  const xcode = record.xcode ?? noName
  const tally = day.xcode.get(xcode) ?? { runs: 0, missed: 0 }
  tally.runs += 1
  tally.missed += record.counts.missed
  day.xcode.set(xcode, tally)
  addNamed(day.branch, record.ref ?? noName, outcomes)
  addNamed(day.scope, record.scope ?? noName, outcomes)
  addNamed(day.workflow, record.workflow ?? noName, outcomes)
}

function insertSorted(list: number[], value: number): void {
  let low = 0
  let high = list.length
  while (low < high) {
    const mid = (low + high) >> 1
    if (list[mid]! <= value) low = mid + 1
    else high = mid
  }
  list.splice(low, 0, value)
}

/** Adds `from` into `into` (days or repositories merging); `from` is left as it was. */
export function mergeDay(into: DayAggregate, from: DayAggregate): void {
  addOutcomes(into, from)
  into.producerRuns += from.producerRuns
  into.kept += from.kept
  into.built += from.built
  into.uploaded += from.uploaded
  into.bytesDown += from.bytesDown
  into.bytesUp += from.bytesUp
  into.restoreMs = [...into.restoreMs, ...from.restoreMs].sort((a, b) => a - b)
  for (const [reason, count] of from.reasons) addCounts(into.reasons, reason, count)
  for (const [name, byReason] of from.frameworks) {
    let mine = into.frameworks.get(name)
    if (!mine) into.frameworks.set(name, (mine = new Map()))
    for (const [reason, count] of byReason) addCounts(mine, reason, count)
  }
  into.missesUnlisted += from.missesUnlisted
  for (const [version, tally] of from.xcode) {
    const mine = into.xcode.get(version) ?? { runs: 0, missed: 0 }
    mine.runs += tally.runs
    mine.missed += tally.missed
    into.xcode.set(version, mine)
  }
  for (const split of ['branch', 'scope', 'workflow'] as const)
    for (const [name, outcomes] of from[split]) addNamed(into[split], name, outcomes)
}

/** The nearest-rank percentile (`q` from 0 to 1) of an ascending list; undefined for an empty one. */
export function percentile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]
}
